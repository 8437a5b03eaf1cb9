"""Operations around a running bridge: health endpoint, notifications, structured logs,
daily reports, alert policy and the dashboard."""
