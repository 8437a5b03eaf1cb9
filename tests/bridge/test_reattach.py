"""Protective orders survive a crash (issue 12 item 5): the reconciler runs bridge.protect_plan on
start, reconnect and the periodic check, on the sim broker. Drift between the ledger and the
broker is built by hand: a child the broker lost is re-attached once; a child the ledger does not
know is adopted, not re-sent; a child resting on a flat symbol is cancelled; a partial exit resizes
the children; a restart with everything in order does nothing at all; a failure never leaves a
silent unprotected position (alert, entries of the symbol refused)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bridge.brokers.protocol import Bar, OrderRequest, OrderState
from bridge.brokers.sim import SimBroker
from bridge.clock import ManualClock
from bridge.config import BridgeConfig, load_config
from bridge.errors import BrokerDisconnected
from bridge.ledger.store import Ledger
from bridge.market import MarketCalendar
from bridge.ops.notify import Notifier
from bridge.reconcile import ReconcileResult
from bridge.risk import Decision, OrderIntent
from bridge.runtime.rejections import on_rejected
from bridge.runtime.runner import Runner

CALENDAR = MarketCalendar()
SEED = 60


def config(path: Path, params: str = "sl_stop=0.05,tp_stop=0.10") -> BridgeConfig:
    return load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {
                "name": "sma_cross",
                "symbols": ("SPY",),
                "params": ",".join(["fast=10,slow=30", params][: 2 if params else 1]),
            },
            "costs": {"slippage_bps": 0.0},
            "risk": {"market_hours": False, "max_position_pct": 1.0, "approval_threshold": 0.0},
            "ledger": {"path": str(path), "synchronous": "NORMAL"},
        },
    )


class Rig:
    """A runner on a sim broker, restartable on the same broker and ledger (a process restart)."""

    def __init__(self, spy: pd.DataFrame, tmp_path: Path, params: str = "sl_stop=0.05,tp_stop=0.10") -> None:
        self.cfg = config(tmp_path / "l.sqlite", params)
        self.frame = spy.iloc[:SEED] * (100.0 / float(spy["close"].iloc[SEED - 1]))  # last close 100
        # long after the history: start-up decisions are refused as stale, so only the reconcile acts
        self.clock = ManualClock(self.frame.index[-1] + pd.Timedelta(days=30))
        self.broker = SimBroker(self.cfg.sim_config(), self.clock, cash=100_000.0, symbols=["SPY"])
        self.broker.load_history("SPY", self.frame)
        self.broker.set_price("SPY", 100.0)
        self.ledger = Ledger(self.cfg.ledger.path, synchronous="NORMAL")
        self.runner = self.new_runner()

    def new_runner(self) -> Runner:
        r = Runner(
            self.cfg,
            self.broker,
            self.ledger,
            clock=self.clock,
            notifier=Notifier(self.cfg.notify, background=False),
            calendar=CALENDAR,
        )
        r.start()
        self.pump(r)
        return r

    def restart(self) -> Runner:
        self.runner.close()
        self.runner = self.new_runner()
        return self.runner

    def pump(self, r: Runner | None = None) -> None:
        r = r or self.runner
        for ev in self.broker.poll(0):
            r.session.handle(ev)

    def enter(self, qty: float = 10, side: str = "BUY") -> str:
        """An entry through the decision path: recorded with its bracket, sent, filled at 100."""
        ctx = self.runner.ctx
        pos = self.position()
        intent = OrderIntent("SPY", side, qty, 100.0)  # type: ignore[arg-type]
        desired = pos + intent.signed
        bar = self.clock.now().normalize()
        ref = ctx.new_ref("SPY", bar, "sig")
        self.runner.decision.send(
            intent,
            bar,
            1.0,
            0.0,
            Decision("allow", "test", "allow"),
            None,
            {"target": 1.0, "last_target": 0.0, "position": pos, "desired": desired, "quantity": intent.signed},
        )
        self.pump()
        return ref

    def exit_outside(self, qty: float, side: str = "SELL") -> None:
        """An exit the ledger recorded, then the process died: it filled at the broker while the
        children stayed (their cancel never went out); the next reconcile recovers its fill."""
        ctx = self.runner.ctx
        ref = f"ql:test:SPY:exit{len(ctx.ledger.all_refs())}"
        intent = OrderIntent("SPY", side, qty, 100.0)  # type: ignore[arg-type]
        row = ctx.order_row(intent, ref, None, "intent", None, None, "test exit")
        ctx.ledger.insert_order(row, self.clock.now())
        self.broker.place(OrderRequest(ref, "SPY", side, qty))  # type: ignore[arg-type]
        self.broker.poll(0)  # nobody listened

    def exit_live(self, qty: float) -> None:
        """The same exit while the runner is up (its fill event handled)."""
        ctx = self.runner.ctx
        ref = f"ql:test:SPY:live{len(ctx.ledger.all_refs())}"
        intent = OrderIntent("SPY", "SELL", qty, 100.0)
        ctx.ledger.insert_order(ctx.order_row(intent, ref, None, "intent", None, None, "test exit"), self.clock.now())
        self.runner.decision.place(intent, ref, None)
        self.pump()

    def position(self) -> float:
        p = self.broker.positions().get("SPY")
        return p.quantity if p else 0.0

    def open_at_broker(self) -> dict[str, OrderState]:
        return {o.order_ref: o for o in self.broker.open_orders()}

    def events(self) -> list[dict]:
        return self.ledger.rows("SELECT order_ref, kind, detail FROM order_events ORDER BY id")

    def alerts(self, kind: str) -> list[dict]:
        return self.ledger.rows("SELECT * FROM alerts WHERE kind = ?", (kind,))

    def reconcile(self, why: str) -> None:
        if not self.broker.is_connected():
            self.broker.connect()
        self.runner.reconciler.run(why)
        self.pump()


@pytest.fixture
def rig(spy_daily: pd.DataFrame, tmp_path: Path):  # noqa: ANN201
    r = Rig(spy_daily, tmp_path)
    yield r
    r.runner.close()
    r.ledger.close()


def placed(rig: Rig) -> list[str]:
    return [req.order_ref for req in rig.broker.placed]


def test_a_child_the_broker_lost_is_reattached_once_not_twice(rig: Rig) -> None:
    e = rig.enter()
    assert set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"}
    rig.broker.drop()
    rig.broker.forget(f"{e}:sl")  # a gateway restart dropped it
    rig.reconcile("reconnect")
    assert rig.ledger.order(f"{e}:sl")["status"] == "void"
    assert set(rig.open_at_broker()) == {f"{e}:tp", f"{e}:sl~1"}
    row = rig.ledger.order(f"{e}:sl~1")
    assert (row["parent_ref"], row["role"], row["oca_group"], row["aux_price"], row["quantity"]) == (
        e,
        "stop",
        f"{e}:oca",
        95.0,
        10,
    )
    assert row["status"] == "working" and "re-attached" in row["reason"]
    rig.reconcile("periodic")
    rig.broker.drop()
    rig.reconcile("reconnect")
    rig.restart()
    assert placed(rig).count(f"{e}:sl~1") == 1 and not [r for r in placed(rig) if r.endswith("~2")]
    assert len(rig.alerts("protect_attached")) == 1
    # and the re-attached stop protects: a bar through 95 closes the position at 95
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize(), 100.0, 100.0, 94.0, 96.0))
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize() + pd.Timedelta(days=1), 96.0, 96.0, 96.0, 96.0))
    assert (rig.broker.executions()[-1].order_ref, rig.broker.executions()[-1].price) == (f"{e}:sl~1", 95.0)
    assert rig.position() == 0


def test_a_child_cancelled_at_the_broker_while_away_is_reattached(rig: Rig) -> None:
    e = rig.enter()
    rig.broker.drop()
    rig.broker.cancel(f"{e}:tp")  # cancelled in TWS while the bridge was away
    rig.reconcile("reconnect")
    assert rig.ledger.order(f"{e}:tp")["status"] == "cancelled"
    assert set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp~1"}
    assert rig.ledger.order(f"{e}:tp~1")["limit_price"] == 110.0


def test_a_child_held_but_unknown_to_the_ledger_is_adopted_not_resent(rig: Rig) -> None:
    e = rig.enter()
    n = len(rig.broker.placed)
    rig.ledger.db.execute("DELETE FROM orders WHERE order_ref = ?", (f"{e}:sl",))  # e.g. a restored backup
    rig.restart()
    row = rig.ledger.order(f"{e}:sl")
    assert row is not None and (row["status"], row["role"], row["parent_ref"]) == ("working", "stop", e)
    assert len(rig.broker.placed) == n and set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"}
    assert not rig.ledger.risk_state().halted, rig.ledger.risk_state().reason  # not a mismatch
    assert len(rig.alerts("protect_adopted")) == 1
    rig.reconcile("periodic")
    assert len(rig.alerts("protect_adopted")) == 1 and len(rig.broker.placed) == n


def test_a_child_resting_on_a_flat_symbol_is_cancelled(rig: Rig) -> None:
    e = rig.enter()
    rig.exit_outside(10)
    assert rig.position() == 0 and set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"}
    rig.reconcile("periodic")
    assert rig.open_at_broker() == {}
    assert rig.ledger.order(f"{e}:sl")["status"] == "cancelled"
    assert any(ev["kind"] == "protect_cancel" and "would open one" in ev["detail"] for ev in rig.events())
    assert not [r for r in placed(rig) if "~" in r]


def test_a_partial_exit_resizes_the_children(rig: Rig) -> None:
    e = rig.enter()
    rig.exit_outside(4)
    rig.reconcile("periodic")
    assert {r: o.quantity for r, o in rig.open_at_broker().items()} == {f"{e}:sl": 6, f"{e}:tp": 6}
    assert rig.ledger.order(f"{e}:sl")["quantity"] == 6
    assert any(ev["kind"] == "resized" and ev["detail"] == "10 -> 6 shares" for ev in rig.events())
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize(), 100.0, 100.0, 94.0, 96.0))
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize() + pd.Timedelta(days=1), 96.0, 96.0, 96.0, 96.0))
    assert rig.position() == 0  # the stop sold 6, not 10: no short opened


def test_a_restart_with_everything_in_order_does_nothing(rig: Rig) -> None:
    e = rig.enter()
    before = (len(rig.events()), len(rig.broker.placed), rig.ledger.rows("SELECT * FROM orders ORDER BY rowid"))
    rig.restart()
    rig.reconcile("periodic")
    rig.broker.drop()
    rig.reconcile("reconnect")
    after = (len(rig.events()), len(rig.broker.placed), rig.ledger.rows("SELECT * FROM orders ORDER BY rowid"))
    assert after == before
    assert set(rig.open_at_broker()) == {f"{e}:sl", f"{e}:tp"}
    assert not rig.runner.ctx.state.unprotected
    assert not [a for a in rig.ledger.rows("SELECT kind FROM alerts") if a["kind"].startswith("protect")]


def test_a_rejected_reattach_alerts_and_refuses_entries_until_reprotected(rig: Rig) -> None:
    e = rig.enter()
    rig.broker.drop()
    rig.broker.forget(f"{e}:sl")
    rig.broker.script(f"{e}:sl~1", "reject", reason="no trading permission")
    rig.reconcile("reconnect")
    ctx = rig.runner.ctx
    assert "rejected" in ctx.state.unprotected["SPY"]
    assert "no trading permission" in rig.alerts("protection_failed")[0]["message"]
    assert rig.alerts("protection_failed")[0]["level"] == "critical"
    pos = {"SPY": rig.position()}
    entry = ctx.gate(OrderIntent("SPY", "BUY", 5, 100.0), pos, {"SPY": 100.0}, 100_000.0, 100.0)
    assert (entry.verdict, entry.rule) == ("reject", "unprotected") and "protective" in entry.reason
    exit_ = ctx.gate(OrderIntent("SPY", "SELL", 10, 100.0), pos, {"SPY": 100.0}, 100_000.0, 100.0)
    assert exit_.allowed
    assert not rig.ledger.risk_state().halted  # other symbols keep trading
    assert "rejected" in ctx.status()["unprotected"]["SPY"]
    rig.reconcile("periodic")  # the next reconcile tries again under a new ref
    assert f"{e}:sl~2" in rig.open_at_broker() and not ctx.state.unprotected
    assert len(rig.alerts("protection_restored")) == 1


def test_a_rejected_child_of_an_entry_marks_the_symbol_unprotected_and_is_re_attached(rig: Rig) -> None:
    """Before the fix the sim's synchronous rejection of a bracket child was recorded and nothing
    else. Now: critical alert, and the stop re-attached at once under ``:sl~1``."""
    ctx = rig.runner.ctx
    ref = ctx.new_ref("SPY", rig.clock.now().normalize(), "sig")
    rig.broker.script(f"{ref}:sl", "reject", reason="stop price invalid")
    assert rig.enter() == ref
    assert rig.ledger.order(f"{ref}:sl")["status"] == "rejected"
    assert "stop price invalid" in rig.alerts("protection_failed")[0]["message"]
    assert f"{ref}:sl~1" in rig.open_at_broker() and not ctx.state.unprotected
    assert len(rig.alerts("protection_restored")) == 1


def test_a_foreign_child_on_a_flat_symbol_is_never_cancelled_but_alerts(rig: Rig, monkeypatch) -> None:  # noqa: ANN001
    e = rig.enter()
    rig.exit_outside(10)
    real = rig.broker.open_orders

    def foreign() -> list[OrderState]:
        return [dataclasses.replace(o, foreign=True, client_id=99) for o in real()]

    monkeypatch.setattr(rig.broker, "open_orders", foreign)
    cancels: list[str] = []
    monkeypatch.setattr(rig.broker, "cancel", lambda ref: cancels.append(ref) or True)
    rig.reconcile("periodic")
    assert cancels == []
    reason = rig.runner.ctx.state.unprotected["SPY"]
    assert "client id 99" in reason and "--client-id 99" in reason
    assert len([a for a in rig.alerts("protection_failed") if f"{e}:sl must cancel" in a["message"]]) == 1
    assert not [r for r in placed(rig) if "~" in r]


def test_nothing_is_sent_or_concluded_while_disconnected(rig: Rig) -> None:
    e = rig.enter()
    n, events = len(rig.broker.placed), len(rig.events())
    rig.broker.forget(f"{e}:sl")
    rig.broker.drop()
    with pytest.raises(BrokerDisconnected):
        rig.runner.reconciler.protector.run("reconnect", ReconcileResult(), fresh=True)
    assert len(rig.broker.placed) == n and len(rig.events()) == events
    assert rig.ledger.order(f"{e}:sl~1") is None


def test_no_exit_rules_no_children_nothing_to_do(spy_daily: pd.DataFrame, tmp_path: Path) -> None:
    r = Rig(spy_daily, tmp_path, params="")
    try:
        r.broker.place(OrderRequest("ql:manual", "SPY", "BUY", 5))
        r.reconcile("periodic")
        assert [req.order_ref for req in r.broker.placed] == ["ql:manual"]
    finally:
        r.runner.close()
        r.ledger.close()


def test_an_entry_without_a_fill_price_leaves_the_symbol_marked_unprotected(rig: Rig) -> None:
    e = rig.enter()
    rig.broker.drop()
    rig.broker.forget(f"{e}:sl")
    rig.ledger.db.execute("UPDATE orders SET avg_fill_price = NULL WHERE order_ref = ?", (e,))
    rig.reconcile("reconnect")
    assert "no fill price" in rig.runner.ctx.state.unprotected["SPY"]  # not popped as 'restored' at once
    assert not rig.alerts("protection_restored") and rig.ledger.order(f"{e}:sl~1") is None


def test_a_strategy_partial_exit_reprotects_the_rest_at_once_with_the_entrys_levels(rig: Rig) -> None:
    """The exit cancels the children before it goes out and carries none; when it fills the rest
    is protected again at once (not a reconcile later), levels from the entry as research keeps them."""
    e = rig.enter()
    assert rig.runner.decision.clear_working("SPY")  # what a decision does first: the children go
    assert rig.open_at_broker() == {}
    rig.runner.decision.send(
        OrderIntent("SPY", "SELL", 4, 103.0),
        rig.clock.now().normalize() + pd.Timedelta(days=1),
        0.6,
        1.0,
        Decision("allow", "test", "allow"),
        None,
        {"target": 0.6, "last_target": 1.0, "position": 10.0, "desired": 6.0, "quantity": -4.0},
    )
    rig.pump()
    assert rig.position() == 6
    held = rig.open_at_broker()
    assert {r: o.quantity for r, o in held.items()} == {f"{e}:sl~1": 6, f"{e}:tp~1": 6}
    assert (rig.ledger.order(f"{e}:sl~1")["aux_price"], rig.ledger.order(f"{e}:tp~1")["limit_price"]) == (95.0, 110.0)
    rig.reconcile("periodic")
    assert len([r for r in placed(rig) if "~" in r]) == 2  # and nothing more at the next reconcile


def test_an_exit_outside_the_strategys_path_fixes_the_children_at_its_fill(rig: Rig) -> None:
    """No reconcile needed: the fill of an exit that left the children behind resizes them, and the
    fill that closes the position cancels them (a stop resting on a flat symbol would open one)."""
    e = rig.enter()
    rig.exit_live(4)
    assert {r: o.quantity for r, o in rig.open_at_broker().items()} == {f"{e}:sl": 6, f"{e}:tp": 6}
    rig.exit_live(6)
    rig.pump()  # the cancels' own events (the runner's next poll)
    assert rig.open_at_broker() == {} and rig.position() == 0
    assert {rig.ledger.order(f"{e}:{k}")["status"] for k in ("sl", "tp")} == {"cancelled"}


def test_a_child_rejected_with_its_never_traded_entry_protects_nothing(rig: Rig) -> None:
    ctx = rig.runner.ctx
    ref = ctx.new_ref("SPY", rig.clock.now().normalize(), "sig")
    rig.broker.script(ref, "reject", reason="no permission")
    rig.enter()
    assert rig.ledger.order(ref)["status"] == "rejected" and rig.position() == 0
    rig.ledger.update_order(f"{ref}:sl", rig.clock.now(), kind="sent", status="sent")  # as if IB took it, then
    on_rejected(ctx, f"{ref}:sl", "parent rejected")  # refused it with its parent
    assert not ctx.state.unprotected and not rig.alerts("protection_failed")


def test_a_lost_trailing_stop_is_reattached_at_its_ratcheted_level(spy_daily: pd.DataFrame, tmp_path: Path) -> None:
    """The trailing role is a STP the runner ratchets (bridge/trailing.py): its re-attach goes out at
    research's level from the bars since the fill (mark 110 -> 104.5), not back at entry x 0.95."""
    r = Rig(spy_daily, tmp_path, params="sl_trail=0.05")
    try:
        e = r.enter()
        assert r.ledger.order(f"{e}:tr")["aux_price"] == 95.0
        d = r.clock.now().normalize()
        r.broker.push_bar("SPY", Bar(d, 100.0, 100.0, 100.0, 100.0))  # the fill bar
        r.broker.push_bar("SPY", Bar(d + pd.Timedelta(days=1), 100.0, 110.0, 99.0, 109.0))  # completes it
        r.broker.push_bar("SPY", Bar(d + pd.Timedelta(days=2), 109.0, 109.0, 109.0, 109.0))  # the 110 high completes
        r.pump()
        assert r.position() == 10
        r.broker.drop()
        r.broker.forget(f"{e}:tr")  # a gateway restart dropped it
        r.reconcile("reconnect")
        assert r.ledger.order(f"{e}:tr~1")["aux_price"] == 104.5
        assert r.open_at_broker()[f"{e}:tr~1"].aux_price == 104.5
    finally:
        r.runner.close()
        r.ledger.close()


def test_a_partly_filled_entry_is_cut_to_its_fill_and_its_shares_protected(rig: Rig) -> None:
    """An entry still working after a partial fill (its children wait for the rest at IB): the
    reconcile cancels its children and its rest, then attaches lone children for the shares bought."""
    e = rig.runner.ctx.new_ref("SPY", rig.clock.now().normalize(), "sig")
    rig.broker.script(e, "partial", qty=4)
    assert rig.enter() == e and rig.position() == 4
    assert rig.ledger.order(e)["status"] == "partially_filled"
    rig.reconcile("periodic")
    assert rig.ledger.order(e)["status"] == "cancelled" and rig.position() == 4
    assert {rig.ledger.order(f"{e}:{r}")["status"] for r in ("sl", "tp")} == {"cancelled"}
    held = rig.open_at_broker()
    assert set(held) == {f"{e}:sl~1", f"{e}:tp~1"}
    assert (held[f"{e}:sl~1"].quantity, held[f"{e}:sl~1"].aux_price, held[f"{e}:tp~1"].limit_price) == (4, 95.0, 110.0)
    assert held[f"{e}:sl~1"].oca_group == f"{e}:oca" and len(rig.alerts("partial_entry_cut")) == 1
    rig.reconcile("periodic")  # protected now: nothing more to do
    assert set(rig.open_at_broker()) == {f"{e}:sl~1", f"{e}:tp~1"} and len(rig.alerts("partial_entry_cut")) == 1
    # live although its parent never filled completely: a bar through 95 sells the 4 shares at 95
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize(), 100.0, 100.0, 94.0, 96.0))
    rig.broker.push_bar("SPY", Bar(rig.clock.now().normalize() + pd.Timedelta(days=1), 96.0, 96.0, 96.0, 96.0))
    last = rig.broker.executions()[-1]
    assert (last.order_ref, last.price, last.quantity, rig.position()) == (f"{e}:sl~1", 95.0, 4, 0)
