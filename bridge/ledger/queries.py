"""Named read queries over the ledger, for the app, the report, the replay and the runtime.

SQL lives in ``bridge.ledger`` only: callers ask for what they need by name, so a schema
change touches this package, not every reader. The store (``store.Ledger``) keeps the
queries the runner's hot path and the dashboard use; these are the rest.
"""

from __future__ import annotations

from typing import Any

from bridge.ledger.store import OPEN, Ledger

_DAY_ORDER_COLUMNS = (
    "order_ref, symbol, purpose, side, quantity, order_type, limit_price, status, filled, avg_fill_price, "
    "commission, reason, bar_time, created_at, sent_at"
)


def orders_of_day(ledger: Ledger, day: str) -> list[dict[str, Any]]:
    """Orders of trading day ``day`` (YYYY-MM-DD), oldest first (the daily report)."""
    return ledger.rows(f"SELECT {_DAY_ORDER_COLUMNS} FROM orders WHERE day = ? ORDER BY created_at", (day,))


def verdict_counts(ledger: Ledger, day: str) -> list[dict[str, Any]]:
    """``{verdict, n}`` rows: decisions recorded on UTC date ``day``."""
    return ledger.rows("SELECT verdict, COUNT(*) n FROM decisions WHERE substr(at, 1, 10) = ? GROUP BY verdict", (day,))


def risk_events_on(ledger: Ledger, day: str) -> list[dict[str, Any]]:
    """Risk events of UTC date ``day``, in order."""
    return ledger.rows("SELECT at, kind, detail FROM risk_events WHERE substr(at, 1, 10) = ? ORDER BY id", (day,))


def has_decisions(ledger: Ledger) -> bool:
    """True once any decision was recorded (a replay needs a fresh ledger)."""
    return bool(ledger.rows("SELECT 1 FROM decisions LIMIT 1"))


def all_orders(ledger: Ledger) -> list[dict[str, Any]]:
    """Every order with its outcome, in the order they were created (the replay's result)."""
    return ledger.rows(
        "SELECT o.order_ref, o.symbol, o.bar_time, o.side, o.quantity, o.status, o.filled, o.avg_fill_price, "
        "o.commission, o.reason, o.role FROM orders o ORDER BY o.created_at, o.rowid"
    )


def last_equity(ledger: Ledger) -> float | None:
    """The newest recorded equity, or None (``bridge status`` without a live runner)."""
    rows = ledger.rows("SELECT equity FROM equity ORDER BY id DESC LIMIT 1")
    return rows[0]["equity"] if rows else None


def awaiting_approval(ledger: Ledger, limit: int = 20) -> list[dict[str, Any]]:
    """Orders held for approval, newest first (``bridge status``)."""
    return ledger.rows(
        "SELECT order_ref, symbol, side, quantity, reason FROM orders WHERE status = 'needs_approval' "
        "ORDER BY created_at DESC LIMIT ?",
        (limit,),
    )


def void_orders_since(ledger: Ledger, since: str) -> list[dict[str, Any]]:
    """Void orders created at or after ``since`` (ISO time): reconciliation may revive them."""
    return ledger.rows("SELECT * FROM orders WHERE status = 'void' AND created_at >= ?", (since,))


def signal_statuses(ledger: Ledger, strategy: str, symbol: str, limit: int = 1000) -> list[str]:
    """Statuses of the strategy's signal orders on ``symbol`` that reached the broker, newest first."""
    rows = ledger.rows(
        "SELECT status FROM orders WHERE strategy = ? AND symbol = ? AND purpose = 'signal' "
        "AND status NOT IN ('dry_run', 'needs_approval') ORDER BY created_at DESC, rowid DESC LIMIT ?",
        (strategy, symbol, limit),
    )
    return [str(r["status"]) for r in rows]


def protection(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Open protective orders (stop, take-profit, trailing) by symbol: what guards each
    position at the broker (``bridge status``, ``/status``)."""
    rows = ledger.rows(
        "SELECT order_ref, parent_ref, symbol, role, side, quantity, order_type, aux_price, limit_price, trail_pct, "
        "oca_group, status, filled FROM orders WHERE role IS NOT NULL AND status IN ({}) ORDER BY symbol, rowid".format(
            ", ".join("?" for _ in OPEN)
        ),
        OPEN,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(str(r["symbol"]), []).append(r)
    return out


def last_entry(ledger: Ledger, symbol: str, side: str) -> dict[str, Any] | None:
    """The newest order of ``symbol`` on ``side`` that traded and is not a protective child: the
    entry a position on that side came from (its children's parent, their levels' base)."""
    rows = ledger.rows(
        "SELECT order_ref, symbol, side, avg_fill_price, run_id, strategy, bar_time, day FROM orders "
        "WHERE symbol = ? AND side = ? AND role IS NULL AND filled > 0 ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (symbol, side),
    )
    return rows[0] if rows else None


def entry_fill(ledger: Ledger, symbol: str) -> dict[str, Any] | None:
    """The fill that opened ``symbol``'s current position (from flat or across zero), walking the
    fills recorded after the baseline; None when flat, or when the position is the baseline's (it
    predates the ledger: its entry is unknown). Adds and partial exits keep the entry: research
    counts ``max_hold`` and measures ``sl_stop``/``tp_stop`` from the position's first entry."""
    base = ledger.rows("SELECT quantity, fill_rowid FROM baseline WHERE symbol = ?", (symbol,))
    top = int(base[0]["fill_rowid"]) if base else 0
    if not base:  # another symbol's baseline row holds the fills' cut-off
        row = ledger.rows("SELECT MAX(fill_rowid) top FROM baseline")
        top = int(row[0]["top"] or 0) if row else 0
    position = float(base[0]["quantity"]) if base else 0.0
    entry: dict[str, Any] | None = None
    fills = ledger.rows(
        "SELECT order_ref, side, quantity, price, time FROM fills WHERE symbol = ? AND rowid > ? ORDER BY rowid",
        (symbol, top),
    )
    for f in fills:
        new = position + (float(f["quantity"]) if f["side"] == "BUY" else -float(f["quantity"]))
        if abs(new) < 1e-9:
            new, entry = 0.0, None
        elif position == 0.0 or (new > 0) != (position > 0):
            entry = f
        position = new
    return entry if position != 0.0 else None


def entry_fill_time(ledger: Ledger, symbol: str) -> str | None:
    """Time of the fill that opened ``symbol``'s current position (:func:`entry_fill`)."""
    f = entry_fill(ledger, symbol)
    return str(f["time"]) if f is not None else None


def entry_order(ledger: Ledger, symbol: str) -> dict[str, Any] | None:
    """The order whose fill opened ``symbol``'s current position (:func:`entry_fill`): the base of
    every bracket level of that position, an add's too (research keeps the first entry's price)."""
    f = entry_fill(ledger, symbol)
    return ledger.order(str(f["order_ref"])) if f is not None and f["order_ref"] else None


def fresh_entry_block(ledger: Ledger, strategy: str, symbol: str) -> float:
    """Research's fresh-entry rule (docs/research.md rule 5): the side (1 long, -1 short) a rule
    closed (time exit, stop, take-profit, trailing stop) while no decision of ``strategy`` since
    then had a target of 0 or of the other side; 0 when nothing blocks. The caller checks the
    symbol is flat (a block only ever holds a flat symbol)."""
    last = ledger.rows(
        "SELECT o.side, f.time FROM fills f JOIN orders o ON o.order_ref = f.order_ref"
        " WHERE f.symbol = ? AND o.strategy = ? ORDER BY f.rowid DESC LIMIT 1",
        (symbol, strategy),
    )
    if not last:
        return 0.0
    exit_ = ledger.rows(
        "SELECT 1 FROM orders o JOIN fills f ON f.order_ref = o.order_ref WHERE f.time = ? AND o.symbol = ?"
        " AND (o.purpose = 'time_exit' OR o.role IS NOT NULL) LIMIT 1",
        (last[0]["time"], symbol),
    )
    if not exit_:
        return 0.0
    side = 1.0 if last[0]["side"] == "SELL" else -1.0
    cleared = ledger.rows(
        "SELECT 1 FROM decisions WHERE symbol = ? AND strategy = ? AND at >= ? AND target IS NOT NULL"
        " AND (target = 0 OR (target > 0) != (? > 0)) LIMIT 1",
        (symbol, strategy, last[0]["time"], side),
    )
    return 0.0 if cleared else side


def last_fill_time(ledger: Ledger, ref: str) -> str | None:
    """When order ``ref`` last filled (ISO time), or None: an entry completes at its last fill."""
    rows = ledger.rows("SELECT MAX(time) AS t FROM fills WHERE order_ref = ?", (ref,))
    return str(rows[0]["t"]) if rows and rows[0]["t"] else None
