"""Daily summary from the ledger (``bridge report``): orders, fills, P&L, positions, cash.

Written as JSON (machine-readable, also stored in the ledger's ``daily_summaries``) and
as a small self-contained HTML page. The trading day is the exchange-local date
(America/New_York). Nothing here talks to the broker.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from bridge.ledger import queries
from bridge.ledger.store import OPEN, Ledger
from quantlab.data.atomic import atomic_write_text

#: Columns of the daily report's order and fill tables, in page order.
ORDER_COLUMNS = [
    "created_at",
    "order_ref",
    "symbol",
    "purpose",
    "side",
    "quantity",
    "order_type",
    "status",
    "filled",
    "avg_fill_price",
    "commission",
    "reason",
]
FILL_COLUMNS = [
    "time",
    "exec_id",
    "order_ref",
    "symbol",
    "side",
    "quantity",
    "price",
    "commission",
    "realized_pnl",
    "source",
]


def daily_summary(ledger: Ledger, day: str) -> dict[str, Any]:
    """Everything the bridge did on ``day`` (YYYY-MM-DD), from the ledger only."""
    orders = queries.orders_of_day(ledger, day)
    # only this ledger's trades: a fill of an order it does not know is another process's
    # (ledgers written before issue 9 recorded those too)
    refs = ledger.all_refs()
    fills = [f for f in ledger.fills(day) if f["order_ref"] in refs]
    equity = ledger.equity_on(day)
    end_of_day = (pd.Timestamp(day) + pd.Timedelta(days=1, hours=8)).tz_localize("UTC").isoformat()
    at, positions = ledger.last_positions(until=end_of_day)
    outstanding = [
        {k: r[k] for k in ("order_ref", "symbol", "side", "quantity", "status", "filled", "created_at")}
        for r in ledger.open_orders()
    ]
    decisions = queries.verdict_counts(ledger, day)
    risk = queries.risk_events_on(ledger, day)
    start = next((e for e in equity if e["source"] == "start_of_day"), equity[0] if equity else None)
    last = equity[-1] if equity else None
    commissions = sum(f["commission"] or 0.0 for f in fills)
    realized = sum(f["realized_pnl"] or 0.0 for f in fills)
    summary: dict[str, Any] = {
        "day": day,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "orders": orders,
        "order_counts": _count(orders, "status"),
        "fills": fills,
        "commissions": commissions,
        "pnl": {
            "start_equity": start["equity"] if start else None,
            "end_equity": last["equity"] if last else None,
            "change": (last["equity"] - start["equity"])
            if start and last and start["equity"] is not None and last["equity"] is not None
            else None,
            "realized_from_fills": realized,
        },
        "cash": last["cash"] if last else None,
        "positions": {
            s: {"quantity": p["quantity"], "avg_cost": p["avg_cost"], "mark": p["mark"]} for s, p in positions.items()
        },
        "positions_at": at,
        "outstanding_orders": outstanding,
        "decisions": {r["verdict"]: r["n"] for r in decisions},
        "risk_events": risk,
        "risk_state": ledger.risk_state().__dict__,
    }
    return summary


def write_report(ledger: Ledger, day: str, out_dir: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Write ``bridge-report-<day>.json`` and ``.html`` into ``out_dir``; returns both paths."""
    summary = daily_summary(ledger, day)
    ledger.save_summary(day, summary, pd.Timestamp.now(tz="UTC"))
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / f"bridge-report-{day}.json"
    hpath = out_dir / f"bridge-report-{day}.html"
    # private like the ledger they summarise (orders and fills); written whole or not at all
    atomic_write_text(jpath, json.dumps(summary, indent=2, default=str, sort_keys=True) + "\n", mode=0o600)
    atomic_write_text(hpath, _html(summary), mode=0o600)
    return jpath, hpath, summary


def _count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[str(r[key])] = out.get(str(r[key]), 0) + 1
    return out


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4f}".rstrip("0").rstrip(".")
    return str(v)


def _html(s: dict[str, Any]) -> str:
    pnl = s["pnl"]
    pos = [{"symbol": k, **v} for k, v in s["positions"].items()]
    risk = s["risk_state"]
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>bridge report {s["day"]}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px}}th{{background:#f3f3f3}}</style></head><body>
<h1>Bridge daily report: {html.escape(s["day"])}</h1>
<p>Start equity {_fmt(pnl["start_equity"])}, end equity {_fmt(pnl["end_equity"])}, change {_fmt(pnl["change"])};
realized from fills {_fmt(pnl["realized_from_fills"])}; commissions {_fmt(s["commissions"])}; cash {_fmt(s["cash"])}.</p>
<p>Kill switch: {"LATCHED" if risk["kill_switch"] else "clear"}; halted: {risk["halted"]} {html.escape(risk["reason"] or "")}</p>
<h2>Orders</h2>{_table(s["orders"], ORDER_COLUMNS)}
<h2>Fills</h2>{_table(s["fills"], FILL_COLUMNS)}
<h2>Positions (at {html.escape(str(s["positions_at"]))})</h2>{_table(pos, ["symbol", "quantity", "avg_cost", "mark"])}
<h2>Outstanding orders</h2>{_table(s["outstanding_orders"], ["created_at", "order_ref", "symbol", "side", "quantity", "status", "filled"])}
<h2>Risk events</h2>{_table(s["risk_events"], ["at", "kind", "detail"])}
</body></html>
"""


__all__ = ["daily_summary", "write_report", "OPEN"]
