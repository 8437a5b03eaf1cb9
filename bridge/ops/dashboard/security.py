"""The dashboard's control token and request checks (token, CSRF, same origin, confirmation).

The token is generated on first run (``secrets.token_urlsafe``), written with 0600
permissions next to the ledger (or to ``[dashboard] token_file``) and never logged. Every
control request must:

1. come from the page itself: ``Origin`` (or ``Referer``) equal to the dashboard's own
   origin and ``Sec-Fetch-Site`` same-origin when the browser sends it, otherwise 403;
2. carry the CSRF token of the page (``X-CSRF-Token`` equal to the ``bridge_csrf``
   cookie, SameSite=Strict), otherwise 403;
3. carry the operator's token (``Authorization: Bearer ...``): missing 401, wrong 403;
4. confirm the action (``"confirm": "<action>"`` in the JSON body), otherwise 400.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridge.config import BridgeConfig
from bridge.errors import ControlError
from bridge.ops.logs import register_secret


def token_path(cfg: BridgeConfig) -> Path:
    if cfg.dashboard.token_file:
        return Path(cfg.dashboard.token_file).expanduser()
    lp = cfg.ledger_path()
    return lp.with_name(lp.name + ".dashboard-token")


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """(token, created). Creates the file 0600 on first run; tightens looser permissions."""
    try:
        return _load_or_create(path)
    except OSError as err:
        raise ControlError(
            "cannot read or create the dashboard token file",
            found=f"{path} ({err.strerror})",
            fix="set [dashboard] token_file to a file in a folder you can write (default: next to the ledger)",
        ) from None


def _load_or_create(path: Path) -> tuple[str, bool]:
    if path.exists():
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        token = path.read_text(encoding="utf-8").strip()
        if len(token) < 16:
            raise ControlError(
                "the dashboard token file is empty or too short",
                found=str(path),
                fix="delete it: a new token is generated on the next start",
            )
        register_secret(token)
        return token, False
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    register_secret(token)
    return token, True


def same_origin(headers: Mapping[str, str], origins: Sequence[str]) -> str | None:
    """Why a request is cross-site (None: it is not)."""
    site = headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {site}"
    sent = headers.get("origin")
    if sent:
        return None if sent in origins else f"Origin {sent} is not {origins[0]}"
    ref = headers.get("referer")
    if ref:
        return (
            None
            if any(ref == o or ref.startswith(o + "/") for o in origins)
            else f"Referer {ref} is not on {origins[0]}"
        )
    return "no Origin or Referer header"


def check_token(headers: Mapping[str, str], token: str) -> tuple[int, str] | None:
    """(status, why) when the operator token is missing (401) or wrong (403); None when right."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() != "bearer " or not auth[7:].strip():  # the scheme is case-insensitive (RFC 7235)
        return 401, "the control token is missing: paste it from the token file into the page"
    if not hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return 403, "the control token is wrong"
    return None


def check_csrf(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    sent, cookie = headers.get("x-csrf-token", ""), cookies.get("bridge_csrf", "")
    if not sent or not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        return "CSRF token missing or wrong: reload the dashboard page"
    return None
