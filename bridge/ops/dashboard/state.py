"""What the page shows, built from the ledger's named read queries and the runner's status.

The runner publishes its status (positions, marks, equity, limits, connection) into the
``runs`` row every second; everything else (orders, fills, decisions, held orders,
alerts, control actions, equity history) comes from the ledger. Nothing here talks to
the broker or writes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from bridge.approvals import held_view
from bridge.config import BridgeConfig
from bridge.control import runner_alive
from bridge.ledger.store import Ledger
from bridge.market import MarketCalendar


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def positions_view(status: dict[str, Any]) -> list[dict[str, Any]]:
    marks = status.get("marks") or {}
    out = []
    for sym, p in sorted((status.get("positions") or {}).items()):
        qty = float(p.get("quantity") or 0.0)
        if not qty:
            continue
        avg = _finite(p.get("avg_cost"))
        mark = _finite(marks.get(sym))
        upl = qty * (mark - avg) if mark is not None and avg is not None else None
        out.append(
            {
                "symbol": sym,
                "quantity": qty,
                "avg_cost": avg,
                "mark": mark,
                "unrealized": upl,
                "value": qty * mark if mark is not None else None,
            }
        )
    return out


def equity_series(rows: list[dict[str, Any]], now_equity: float | None, now: str) -> dict[str, list[Any]]:
    t = [r["at"] for r in rows]
    e = [float(r["equity"]) for r in rows]
    if now_equity is not None:
        t.append(now)
        e.append(now_equity)
    peak, dd = -math.inf, []
    for v in e:
        peak = max(peak, v)
        dd.append((v - peak) / peak if peak > 0 else 0.0)
    return {"t": t, "equity": e, "drawdown": dd}


def build_state(ledger: Ledger, cfg: BridgeConfig) -> dict[str, Any]:
    wall = pd.Timestamp.now(tz="UTC")
    run = ledger.latest_run() or {}
    alive = runner_alive(ledger, wall) is not None
    status = json.loads(run["status"]) if run.get("status") else {}
    rs = ledger.risk_state()
    clock = (
        pd.Timestamp(status["clock"]) if alive and status.get("clock") else wall
    )  # the runner's clock decides expiries
    day = str(MarketCalendar(cfg.data.calendar).trading_day(clock))
    equity = _finite(status.get("equity")) if alive else None
    sod = _finite(rs.loss_ref_equity or rs.sod_equity)
    hist = ledger.equity_history()
    peak = max([float(r["equity"]) for r in hist] + ([equity] if equity is not None else []), default=None)
    hb = run.get("heartbeat_at")
    age = (wall - pd.Timestamp(hb)).total_seconds() if hb else None
    stale = status.get("stale") or {}
    return {
        "now": wall.isoformat(),
        "clock": clock.isoformat(),
        "day": day,
        "runner": {
            "alive": alive,
            "run_id": run.get("run_id"),
            "mode": run.get("mode"),
            "state": run.get("state"),
            "strategy": run.get("strategy"),
            "symbols": run.get("symbols"),
            "heartbeat_age": age,
            "connected": bool(alive and status.get("connected")),
            "account": status.get("account", ""),
        },
        "data": {"fresh": alive and not stale, "stale": stale, "last_bars": status.get("last_bars") or {}},
        "risk": {"kill_switch": rs.kill_switch, "halted": rs.halted, "reason": rs.reason, "since": rs.since},
        "equity": {
            "now": equity,
            "sod": sod,
            "pnl_today": (equity - sod) if equity is not None and sod else None,
            "peak": peak,
            "drawdown": ((equity - peak) / peak) if equity is not None and peak else None,
            "cash": _finite(status.get("cash")) if alive else None,
        },
        "limits": status.get("limits") or [] if alive else [],
        "positions": positions_view(status) if alive else [],
        "orders": ledger.orders_today(day),
        "fills": ledger.recent_fills(),
        "decisions": ledger.recent_decisions(),
        "held": held_view(
            ledger, cfg.strategy.bar if not run.get("config") else json.loads(run["config"])["strategy"]["bar"], clock
        ),
        "alerts": ledger.recent_alerts(),
        "controls": ledger.control_log(10),
        "series": equity_series(hist, equity, clock.isoformat()),
    }
