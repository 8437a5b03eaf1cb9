"""Alerts: fills, kill switch, disconnects, stale data and errors.

Every alert is logged (always). When configured, it is also emailed (SMTP, STARTTLS,
password from the environment or a secret file) and POSTed as JSON to a webhook (token
sent as ``Authorization: Bearer``). Network delivery runs on a background thread, so a
slow mail server never blocks the trading loop; failures are logged, never raised.
"""

from __future__ import annotations

import json
import logging
import queue
import smtplib
import threading
import urllib.request
from email.message import EmailMessage
from typing import Any

from bridge.config import AlertsConfig, NotifyConfig, Secret, resolve_secret
from bridge.ops.logs import redact, register_secret

log = logging.getLogger("bridge.alert")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL}


class Notifier:
    """Sends alerts to the log and, when configured, email and a webhook."""

    def __init__(
        self,
        cfg: NotifyConfig,
        *,
        env: dict[str, str] | None = None,
        background: bool = True,
        routing: AlertsConfig | None = None,
    ) -> None:
        self.cfg = cfg
        self.routing = routing or AlertsConfig(webhook_min_level="info", email_min_level="info")
        self.smtp_password: Secret | None = resolve_secret(cfg.smtp_password_env, cfg.smtp_password_file, env)
        self.webhook_token: Secret | None = resolve_secret(cfg.webhook_token_env, cfg.webhook_token_file, env)
        for secret in (self.smtp_password, self.webhook_token):
            if secret:
                register_secret(secret.reveal())
        self.sent: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._background = background
        self._thread: threading.Thread | None = None
        if background and self.remote:
            self._thread = threading.Thread(target=self._worker, name="bridge-notifier", daemon=True)
            self._thread.start()

    @property
    def remote(self) -> bool:
        return bool(self.cfg.webhook_url or (self.cfg.smtp_host and self.cfg.email_to))

    def alert(self, kind: str, message: str, level: str = "warning", **fields: Any) -> None:
        """Log the alert and queue it for email/webhook delivery."""
        message = redact(message)  # a credential never leaves in an alert, even by accident
        payload = {"kind": kind, "level": level, "message": message, **fields}
        log.log(LEVELS.get(level, logging.WARNING), message, extra={"event": "alert", "alert": kind, **fields})
        self.sent.append(payload)
        if self.remote:
            if self._background:
                self._q.put(payload)
            else:
                self._deliver(payload)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, then stop the worker."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _worker(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            self._deliver(item)

    def _deliver(self, payload: dict[str, Any]) -> None:
        from bridge.ops.alerts import wants

        if self.cfg.webhook_url and wants("webhook", payload, self.routing):
            try:
                self._webhook(payload)
            except Exception as err:  # noqa: BLE001 - alerts must never crash trading
                self._failed("webhook", err)
        if self.cfg.smtp_host and self.cfg.email_to and wants("email", payload, self.routing):
            try:
                self._email(payload)
            except Exception as err:  # noqa: BLE001
                self._failed("email", err)

    def _failed(self, channel: str, err: Exception) -> None:
        text = redact(f"{channel} alert delivery failed: {err!r}")
        self.failures.append(text)
        log.error(text, extra={"event": "alert_delivery_failed", "channel": channel})

    def _webhook(self, payload: dict[str, Any]) -> None:
        from bridge.ops.alerts import webhook_body

        body = json.dumps(webhook_body(payload, self.routing.webhook_format), default=str).encode()
        req = urllib.request.Request(
            self.cfg.webhook_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        if self.webhook_token:
            req.add_header("Authorization", f"Bearer {self.webhook_token.reveal()}")
        with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:  # noqa: S310 - operator-configured URL
            resp.read()

    def _email(self, payload: dict[str, Any]) -> None:
        c = self.cfg
        msg = EmailMessage()
        msg["Subject"] = f"[bridge] {payload['level'].upper()} {payload['kind']}"
        msg["From"] = c.smtp_from or c.smtp_user or "bridge@localhost"
        msg["To"] = ", ".join(c.email_to)
        msg.set_content(json.dumps(payload, indent=2, default=str))
        with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout) as smtp:
            if c.smtp_starttls:
                smtp.starttls()
            if c.smtp_user and self.smtp_password:
                smtp.login(c.smtp_user, self.smtp_password.reveal())
            smtp.send_message(msg)
