"""The dashboard server: Starlette + uvicorn in its own process (``bridge dashboard``).

Why a separate process: the trading loop never waits for a browser, a slow page or a
crashed web server; the dashboard reads the WAL ledger (readers never block the writer)
and the status the runner publishes there every second, and sends controls through the
ledger's ``control`` table, exactly like ``bridge stop`` (it calls the same functions).
It can be started, restarted or stopped at any time without touching the bridge.

Routes: ``/`` the page, ``/static/plotly.min.js`` (from the installed plotly package:
no CDN), ``/api/state`` (JSON, polled by the page), ``/health`` (runner + disk + memory),
``POST /api/control/{stop,resume,approve,reject}`` (token, CSRF, same origin, confirmation).
"""

from __future__ import annotations

import errno
import getpass
import logging
import secrets
import socket
from pathlib import Path
from typing import Any

import plotly
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bridge import app as bridge_app
from bridge.config import BridgeConfig
from bridge.errors import ControlError, LedgerError
from bridge.ledger.store import Ledger
from bridge.ops.dashboard.security import (
    check_csrf,
    check_token,
    load_or_create_token,
    same_origin,
    token_path,
)
from bridge.ops.dashboard.state import build_state
from bridge.ops.sysinfo import system_checks
from quantlab.errors import QuantlabError

log = logging.getLogger("bridge.dashboard")
PAGE = Path(__file__).with_name("page.html")
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
ACTIONS = ("stop", "resume", "approve", "reject")


def _error(status: int, what: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"ok": False, "error": what, **extra}, status_code=status)


def create_app(cfg: BridgeConfig, token: str, origins: list[str]) -> Starlette:
    """The ASGI app for one ledger. ``origins``: ``http://host:port`` as browsers may see it."""
    if not cfg.ledger_path().exists():
        raise LedgerError(
            "ledger not found", found=str(cfg.ledger_path()), fix="pass --ledger (or --config) of a bridge that has run"
        )

    def read_state() -> dict[str, Any]:
        ledger = Ledger(cfg.ledger_path(), synchronous=cfg.ledger.synchronous, create=False)
        try:
            return build_state(ledger, cfg)
        finally:
            ledger.close()

    async def page(request: Request) -> Response:
        csrf = request.cookies.get("bridge_csrf") or secrets.token_urlsafe(24)
        html = (
            PAGE.read_text(encoding="utf-8")
            .replace("__CSRF__", csrf)
            .replace("__REFRESH_MS__", str(int(cfg.dashboard.refresh * 1000)))
        )
        resp = HTMLResponse(
            html,
            headers={
                "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
            },
        )
        resp.set_cookie("bridge_csrf", csrf, httponly=True, samesite="strict", path="/")
        return resp

    async def plotly_js(request: Request) -> Response:
        return FileResponse(PLOTLY_JS, media_type="application/javascript", headers={"Cache-Control": "max-age=86400"})

    async def state(request: Request) -> Response:
        try:
            body = await run_in_threadpool(read_state)
        except QuantlabError as err:
            return _error(503, err.render())
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def health(request: Request) -> Response:
        try:
            st = await run_in_threadpool(read_state)
        except QuantlabError as err:
            return JSONResponse({"ok": False, "error": err.render()}, status_code=503)
        machine = system_checks(cfg.ledger_path(), cfg.ops.min_free_disk_mb, cfg.ops.max_memory_pct)
        checks = {
            "runner_alive": st["runner"]["alive"],
            "connected": st["runner"]["connected"],
            "data_fresh": st["data"]["fresh"],
            "kill_switch_clear": not st["risk"]["kill_switch"],
            "not_halted": not st["risk"]["halted"],
            "disk_ok": machine.pop("disk_ok"),
            "memory_ok": machine.pop("memory_ok"),
        }
        ok = all(checks.values())
        return JSONResponse(
            {"ok": ok, **checks, **machine, "reason": st["risk"]["reason"]}, status_code=200 if ok else 503
        )

    async def control(request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return _error(404, f"unknown control {action!r}", known=list(ACTIONS))
        headers = {k.lower(): v for k, v in request.headers.items()}
        cross = same_origin(headers, origins)
        if cross:
            log.warning(
                "control refused: cross-site", extra={"event": "dashboard_refused", "action": action, "detail": cross}
            )
            return _error(403, f"cross-site request refused ({cross})")
        bad_csrf = check_csrf(headers, request.cookies)
        if bad_csrf:
            return _error(403, bad_csrf)
        denied = check_token(headers, token)
        if denied:
            log.warning(
                "control refused: token", extra={"event": "dashboard_refused", "action": action, "detail": denied[1]}
            )
            return _error(denied[0], denied[1])
        if not headers.get("content-type", "").startswith("application/json"):
            return _error(415, "send the control as application/json")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or body.get("confirm") != action:
            return _error(400, f'not confirmed: the body must say "confirm": "{action}"')
        client = request.client.host if request.client else "?"
        by = f"dashboard ({getpass.getuser()}@{socket.gethostname()} from {client})"
        try:
            result = await run_in_threadpool(_run_control, cfg, action, body, by)
        except ControlError as err:
            code = {"unknown order id": 404, "no order id given": 400}.get(err.what, 409)
            return _error(code, err.render())
        except QuantlabError as err:
            return _error(409, err.render())
        if result.get("error"):
            return _error(409, str(result["error"]), result=result)
        return JSONResponse({"ok": True, "action": action, "by": by, "result": result})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/static/plotly.min.js", plotly_js),
            Route("/api/state", state),
            Route("/health", health),
            Route("/api/control/{action}", control, methods=["POST"]),
        ]
    )


def _run_control(cfg: BridgeConfig, action: str, body: dict[str, Any], by: str) -> dict[str, Any]:
    """The same functions as ``bridge stop|resume|approve|reject``."""
    if action == "stop":
        return bridge_app.stop_bridge(
            cfg, flatten=bool(body.get("flatten")), shutdown=False, client_id=None, timeout=15.0, by=by
        )
    if action == "resume":
        return bridge_app.resume_bridge(cfg, rebaseline=False, acknowledge=lambda _: True, by=by)
    ref = str(body.get("order_ref") or "")
    if not ref:
        raise ControlError("no order id given", fix='send "order_ref" of a held order')
    if action == "approve":
        return bridge_app.approve_order(cfg, ref, by)
    return bridge_app.reject_order(cfg, ref, by)


def check_port_free(host: str, port: int) -> None:
    """Fail before anything starts when the port is taken (uvicorn would only log it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ControlError(
                    "the dashboard port is in use",
                    found=f"{host}:{port} ({err.strerror})",
                    fix="pass --port N (or [dashboard] port), or stop the other process",
                ) from None
            raise ControlError(
                "cannot listen on the dashboard host",
                found=f"{host}:{port} ({err.strerror})",
                fix="pass --host 127.0.0.1 (or [dashboard] host): an address of this machine",
            ) from None


def serve(cfg: BridgeConfig, host: str, port: int, announce: Any = print) -> None:
    """Run the dashboard until interrupted."""
    import uvicorn

    if not cfg.ledger_path().exists():
        raise LedgerError(
            "ledger not found", found=str(cfg.ledger_path()), fix="pass --ledger (or --config) of a bridge that has run"
        )
    check_port_free(host, port)
    path = token_path(cfg)
    token, created = load_or_create_token(path)
    origins = [f"http://{host}:{port}"] + ([f"http://localhost:{port}"] if host in ("127.0.0.1", "localhost") else [])
    app = create_app(cfg, token, origins)
    announce(
        f"dashboard on http://{host}:{port}/ (ledger {cfg.ledger_path()}); control token "
        f"{'created in' if created else 'in'} {path} (0600)"
    )
    uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    ).run()
