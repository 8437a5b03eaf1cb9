"""Bar intervals: pandas frequency and bars per year (one place for annualisation).

US equities trade 252 sessions a year of 6.5 hours, so a year has 252 daily bars,
1,638 hourly bars (6.5 per session) and 98,280 one-minute bars. vectorbt is told the
same through ``freq`` and ``year_freq = freq * bars_per_year``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from quantlab.errors import ParameterError

SESSIONS_PER_YEAR = 252
SESSION_MINUTES = 390


@dataclass(frozen=True)
class Interval:
    """A bar interval such as ``1d`` or ``5m``."""

    name: str
    minutes: int  # 0 for daily

    @property
    def freq(self) -> pd.Timedelta:
        return pd.Timedelta(days=1) if self.minutes == 0 else pd.Timedelta(minutes=self.minutes)

    @property
    def bars_per_year(self) -> float:
        if self.minutes == 0:
            return float(SESSIONS_PER_YEAR)
        return SESSIONS_PER_YEAR * SESSION_MINUTES / self.minutes

    @property
    def year_freq(self) -> pd.Timedelta:
        return self.freq * self.bars_per_year


_INTERVALS = {
    "1d": Interval("1d", 0),
    "1h": Interval("1h", 60),
    "30m": Interval("30m", 30),
    "15m": Interval("15m", 15),
    "5m": Interval("5m", 5),
    "1m": Interval("1m", 1),
}


def get_interval(name: str) -> Interval:
    """Return the :class:`Interval` called ``name`` (``1d``, ``1h``, ``30m``, ``15m``, ``5m``, ``1m``)."""
    try:
        return _INTERVALS[name]
    except KeyError:
        raise ParameterError(
            "unknown bar interval", found=repr(name), fix=f"use one of {', '.join(_INTERVALS)}"
        ) from None
