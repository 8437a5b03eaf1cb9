"""What the CLI commands call: wiring of config, broker, ledger, notifier and runner."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.brokers.factory import make_broker
from bridge.clock import WallClock
from bridge.config import BridgeConfig
from bridge.control import ALIVE_SECONDS, LedgerSync, emergency_stop, pump_into, runner_alive, wait_for_control
from bridge.errors import AccountError, BridgeConfigError, GatewayUnreachable
from bridge.ledger import queries
from bridge.ledger.lease import probe
from bridge.ledger.store import Ledger
from bridge.market import MarketCalendar
from bridge.protection import exits_for_run
from quantlab.engine.intervals import get_interval
from quantlab.engine.params import resolve_params
from quantlab.engine.registry import get_strategy
from quantlab.engine.strategy import StrategySpec


def validate_run(cfg: BridgeConfig) -> tuple[StrategySpec, dict[str, float]]:
    """Check strategy, parameters, symbols and bar before anything connects."""
    if not cfg.strategy.name:
        raise BridgeConfigError("no strategy given", fix="pass --strategy NAME (e.g. sma_cross) or set [strategy] name")
    if not [s for s in cfg.strategy.symbols if s.strip()]:
        raise BridgeConfigError("no symbols given", fix="pass --symbols SPY,QQQ or set [strategy] symbols")
    need_stop = cfg.risk.require_stop or cfg.risk.max_loss_per_trade > 0
    spec = exits_for_run(
        get_strategy(cfg.strategy.name),
        cfg.strategy.params,
        cfg.mode,
        require_stop=need_stop,
        limit_orders=cfg.orders.type == "limit",
        allow_short=cfg.sizing.allow_short,
        limit_band=cfg.risk.limit_band_pct,
    )
    params = resolve_params(spec, cfg.strategy.params or None, get_interval(cfg.strategy.bar))
    return spec, params


def confirm_live_account(cfg: BridgeConfig, flag: str | None, prompt: Callable[[], str]) -> BridgeConfig:
    """Live mode: the account id must be typed (or given with --confirm-account) and not a paper id."""
    typed = (flag or "").strip()
    if not typed and sys.stdin.isatty():
        typed = prompt().strip()
    if not typed:
        raise AccountError(
            "live trading needs the account id confirmed",
            fix="pass --confirm-account U1234567, or run in a terminal and type it",
        )
    if typed.upper().startswith("D"):
        raise AccountError(
            "refusing a paper account id in --live mode", found=typed, fix="paper accounts (DU...) run with --paper"
        )
    if cfg.gateway.account and cfg.gateway.account != typed:
        raise AccountError(
            "the confirmed account differs from [gateway] account", found=f"{typed} vs {cfg.gateway.account}"
        )
    return dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, account=typed))


def run_bridge(cfg: BridgeConfig) -> int:
    """``bridge run --paper/--live``: run until stopped; returns the exit code."""
    from bridge.ops.health import HealthServer, HealthState
    from bridge.ops.notify import Notifier
    from bridge.runtime.runner import Runner, settle_memory

    spec, _ = validate_run(cfg)
    notifier = Notifier(cfg.notify, routing=cfg.alerts)
    broker = make_broker(cfg)
    ledger = Ledger(cfg.ledger_path(), synchronous=cfg.ledger.synchronous)
    health = HealthState()
    runner = Runner(cfg, broker, ledger, notifier=notifier, spec=spec, health=health)
    server = None
    state = "crashed"
    try:
        runner.claim_ledger()  # first: a second runner touches neither the health port nor the gateway
        server = HealthServer(health, cfg.health.port, cfg.health.host).start() if cfg.health.port else None
        runner.install_signal_handlers()
        runner.start()
        settle_memory()
        runner.run()
        state = "stopped"
    finally:
        try:
            runner.close(state)
        finally:
            if server is not None:
                server.stop()
            ledger.close()
    return 0


def replay_summary(cfg: BridgeConfig, start: str | None, end: str | None, cash: float) -> dict[str, Any]:
    from bridge.replay import run_replay

    spec, _ = validate_run(cfg)
    return run_replay(cfg, start=start, end=end, cash=cash, spec=spec).summary()


def _ledger(cfg: BridgeConfig) -> Ledger:
    return Ledger(cfg.ledger_path(), synchronous=cfg.ledger.synchronous, create=False)


def runner_view(ledger: Ledger, now: pd.Timestamp) -> dict[str, Any]:
    """Who holds the ledger's lock (:func:`bridge.ledger.lease.probe`) and its heartbeat age in seconds.

    The age is that of the holder's own run row (None before its first heartbeat, or if
    the row is not the ledger's latest run, as while a new runner is still starting).
    """
    out = probe(ledger.path)
    run = ledger.latest_run() or {}
    hb = run.get("heartbeat_at") if out.get("run_id") and run.get("run_id") == out["run_id"] else None
    age = (now - pd.Timestamp(hb)).total_seconds() if hb else None
    out["heartbeat_age"] = None if age is None else round(age, 1)
    out["heartbeating"] = age is not None and age <= ALIVE_SECONDS
    return out


def status_view(cfg: BridgeConfig) -> dict[str, Any]:
    """What ``bridge status`` shows, from the ledger (the runner heartbeats into it)."""
    ledger = _ledger(cfg)
    now = WallClock().now()
    run = ledger.latest_run()
    alive = runner_alive(ledger, now) is not None
    status = json.loads(run["status"]) if run and run.get("status") else {}
    rs = ledger.risk_state()
    if alive and status.get("positions") is not None:
        positions = {s: {"quantity": p["quantity"], "avg_cost": p["avg_cost"]} for s, p in status["positions"].items()}
    else:
        _, snap = ledger.last_positions()
        positions = {
            s: {"quantity": p["quantity"], "avg_cost": p["avg_cost"]} for s, p in snap.items() if p["quantity"]
        }
    equity = status.get("equity")
    if equity is None or (isinstance(equity, float) and math.isnan(equity)):
        equity = queries.last_equity(ledger)
    pnl = (equity - rs.sod_equity) if equity is not None and rs.sod_equity else None
    view = {
        "ledger": str(ledger.path),
        "runner_alive": alive,
        "runner": runner_view(ledger, now),  # the lock: alive, stale or none
        "run": {
            k: run[k]
            for k in (
                "run_id",
                "mode",
                "strategy",
                "symbols",
                "account",
                "state",
                "started_at",
                "heartbeat_at",
                "ended_at",
                "pid",
            )
        }
        if run
        else None,
        "status": status,
        "positions": positions,
        "open_orders": [
            {
                k: r[k]
                for k in ("order_ref", "symbol", "side", "quantity", "order_type", "status", "filled", "created_at")
            }
            for r in ledger.open_orders()
        ],
        "equity": equity,
        "pnl_today": pnl,
        "risk": dataclasses.asdict(rs),
        "needs_approval": queries.awaiting_approval(ledger),
        "protection": queries.protection(ledger),  # issue 12: what guards each position at the broker
    }
    ledger.close()
    return view


def stop_bridge(
    cfg: BridgeConfig,
    *,
    flatten: bool,
    shutdown: bool,
    client_id: int | None,
    timeout: float,
    host: str | None = None,
    port: int | None = None,
    by: str | None = None,
) -> dict[str, Any]:
    """``bridge stop``: through the running bridge if alive, else by connecting directly.

    Connecting directly, it uses the gateway of the last run recorded in the ledger (unless
    ``host``/``port`` are given) with that run's client id + 1.
    """
    ledger = _ledger(cfg)
    clock = WallClock()
    try:
        by = by or f"bridge stop (pid {os.getpid()})"
        lease = runner_view(ledger, clock.now())
        where = {"ledger": str(ledger.path), "runner": lease}
        cid = ledger.request_control("stop", {"flatten": flatten, "shutdown": shutdown, "by": by}, clock.now(), by)
        # a runner holding the lock but not heartbeating (starting up, or hung) gets --timeout to answer too
        if runner_alive(ledger, clock.now()) is not None or lease["state"] == "alive":
            row = wait_for_control(ledger, cid, timeout)
            if row is not None:
                return {"handled_by": row["processed_by"], **json.loads(row["result"]), **where}
        if not ledger.claim_control(cid, clock.now(), "bridge stop"):
            row = wait_for_control(ledger, cid, timeout)
            return {
                **(
                    {"handled_by": row["processed_by"], **json.loads(row["result"])}
                    if row
                    else {"error": "the runner claimed the stop but did not answer"}
                ),
                **where,
            }
        where["note"] = _no_runner_note(ledger.path, lease, timeout, shutdown)
        req = ledger.control(cid)
        assert req is not None
        run = ledger.latest_run() or {}
        symbols = [s for s in str(run.get("symbols") or "").split(",") if s] or list(cfg.strategy.symbols)
        ran = json.loads(run["config"]).get("gateway", {}) if run.get("config") else {}
        gateway = dataclasses.replace(
            cfg.gateway,
            host=host or ran.get("host", cfg.gateway.host),
            port=port or int(ran.get("port", cfg.gateway.port)),
            client_id=client_id if client_id is not None else int(ran.get("client_id", cfg.gateway.client_id)) + 1,
            account=run.get("account") or cfg.gateway.account,
            connect_attempts=1,
        )
        broker = make_broker(cfg, gateway=gateway)
        reason = f"bridge stop requested by {by} (no running bridge answered)"
        try:
            broker.connect()
        except GatewayUnreachable as err:
            ledger.latch(clock.now(), reason + "; gateway unreachable: open orders NOT cancelled", "manual_stop")
            result: dict[str, Any] = {"kill_switch": True, "cancelled": False, "error": err.render()}
            ledger.finish_control(cid, json.dumps(result))
            return {"handled_by": "bridge stop", **result, **where}
        calendar = MarketCalendar(cfg.data.calendar)
        sync = LedgerSync(ledger, clock.now, lambda: str(calendar.trading_day(clock.now())))
        try:
            result = emergency_stop(
                broker,
                ledger,
                flatten=flatten,
                symbols=symbols,
                strategy=str(run.get("strategy") or cfg.strategy.name),
                key=str(run.get("params") or ""),
                tag=pd.Timestamp(req["at"]),
                reason=reason,
                kind="manual_stop",
                now=clock.now,
                pump=pump_into(broker, sync),
                calendar=calendar,
                cancel_wait=cfg.orders.cancel_wait,
            )
        finally:
            broker.disconnect()
        ledger.finish_control(cid, json.dumps(result, default=str))
        return {"handled_by": "bridge stop", **result, **where}
    finally:
        ledger.close()


def _no_runner_note(path: Path, lease: dict[str, Any], timeout: float, shutdown: bool) -> str:
    """Why ``bridge stop`` acts through the gateway itself, for the person who typed it."""
    if lease["state"] == "alive":
        why = f"the runner holding {lease['lock']} (pid {lease.get('pid')}) did not answer within {timeout:g}s"
    elif lease["state"] == "unknown":
        why = f"no runner answered and {lease['lock']} cannot be read ({lease.get('error')})"
    else:
        why = f"no bridge is running on {path} (no process holds {lease['lock']})"
        if lease["state"] == "stale":
            why += f"; the last one, pid {lease.get('pid')} on {lease.get('host')}, died without stopping"
    return f"{why}: connecting to the gateway directly to latch the kill switch and cancel open orders" + (
        "; nothing to shut down" if shutdown and lease["state"] in ("none", "stale") else ""
    )


def resume_bridge(
    cfg: BridgeConfig, *, rebaseline: bool, acknowledge: Callable[[str], bool], by: str = "bridge resume"
) -> dict[str, Any]:
    """``bridge resume``: clear the kill switch/halt after an explicit acknowledgement."""
    ledger = _ledger(cfg)
    clock = WallClock()
    try:
        rs = ledger.risk_state()
        if not rs.trading_blocked and not rebaseline:
            return {"resumed": False, "message": "the kill switch is not latched and trading is not halted"}
        question = (
            f"Kill switch {'LATCHED' if rs.kill_switch else 'clear'}, halted {rs.halted} since {rs.since}: {rs.reason}\n"
            "Type RESUME to clear it and let the bridge trade again"
        )
        if not acknowledge(question):
            return {"error": "not acknowledged: type RESUME at the prompt or pass --yes", "resumed": False}
        now = clock.now()
        ledger.set_risk_state(
            now, kill_switch=False, halted=False, reason="", since=None, day=None, rebaseline=rebaseline
        )
        ledger.risk_event(now, "resume", f"cleared by {by} (was: {rs.reason}); rebaseline={rebaseline}")
        out: dict[str, Any] = {
            "resumed": True,
            "previous_reason": rs.reason,
            "rebaseline": rebaseline,
            "note": "the daily loss limit now counts from the equity at the resume",
        }
        if runner_alive(ledger, now) is None:  # issue 13: the action is recorded even with no runner to tell
            ledger.record_control(now, "resume", {"rebaseline": rebaseline, "by": by}, by, out)
        else:
            cid = ledger.request_control("resume", {"rebaseline": rebaseline}, now, by)
            row = wait_for_control(ledger, cid, 10.0)
            out["runner"] = (
                json.loads(row["result"]) if row else "no answer from the running bridge (it reads the ledger anyway)"
            )
        return out
    finally:
        ledger.close()


def approve_order(cfg: BridgeConfig, ref: str, by: str) -> dict[str, Any]:
    """``bridge approve ID``: the running bridge re-checks the held order and sends it."""
    from bridge.approvals import request_approval

    ledger = _ledger(cfg)
    try:
        return request_approval(ledger, ref, by, WallClock().now(), _run_bar(ledger, cfg))
    finally:
        ledger.close()


def reject_order(cfg: BridgeConfig, ref: str, by: str) -> dict[str, Any]:
    """``bridge reject ID``: void a held order."""
    from bridge.approvals import reject_held

    ledger = _ledger(cfg)
    try:
        return reject_held(ledger, ref, by, WallClock().now())
    finally:
        ledger.close()


def _run_bar(ledger: Ledger, cfg: BridgeConfig) -> str:
    """The bar size of the last run (held orders expire one of its bars after being held)."""
    run = ledger.latest_run() or {}
    try:
        return str(json.loads(run["config"])["strategy"]["bar"])
    except (KeyError, TypeError, ValueError):
        return cfg.strategy.bar


def report_day(cfg: BridgeConfig, day: str | None, out_dir: Path | None) -> tuple[Path, Path, dict[str, Any]]:
    from bridge.ops.report import write_report
    from quantlab.paths import reports_dir

    ledger = _ledger(cfg)
    try:
        when = day or str(MarketCalendar().trading_day(WallClock().now()))
        try:
            when = str(pd.Timestamp(when).date())
        except ValueError:
            raise BridgeConfigError("--date must be YYYY-MM-DD", found=day) from None
        return write_report(ledger, when, out_dir or reports_dir() / "bridge")
    finally:
        ledger.close()
