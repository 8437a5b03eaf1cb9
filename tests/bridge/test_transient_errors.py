"""Issue 9, fault 3: transient history/data errors never kill a live runner.

IB 162 or 321 (and a history request that gets no answer at all) during the re-request
after a 1101 resync or a reconnect: the runner stays alive in state ``resubscribing``,
alerts, retries with backoff, keeps ``bridge stop`` working, and trades again once the
history comes back. It only exits by command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from tests.fakegw import FakeGateway

from ._harness import BridgeHarness

H = Callable[..., BridgeHarness]
FAST = {"request_timeout": 0.5}  # the no-answer and 321 cases wait for the client's own timeout


def _kinds(h: BridgeHarness) -> list[str]:
    return [a["kind"] for a in h.notifier.sent]


def _started(harness: H, **sections: object) -> BridgeHarness:
    h = harness(seed=60, **sections)
    h.start()
    assert h.until(lambda: h.settled() and h.orders())
    return h


@pytest.mark.parametrize("code", [162, 321, 0])
def test_history_error_after_1101_keeps_the_runner_alive(harness: H, gw: FakeGateway, code: int) -> None:
    h = _started(harness, gateway=FAST)
    gw.fail_history("SPY", code)
    gw.connectivity_restored(data_lost=True)  # 1101: resubscribe, and the re-request fails
    assert h.until(lambda: h.runner.state == "resubscribing", timeout=5)
    assert "history_unavailable" in _kinds(h)
    before = len(gw.received(msg_id=20))
    assert h.until(lambda: len(gw.received(msg_id=20)) >= before + 2, timeout=10)  # retried with backoff
    assert h.runner.state == "resubscribing"
    gw.clear_history_failure("SPY")
    assert h.until(lambda: h.runner.state == "ready", timeout=10)
    assert "history_restored" in _kinds(h)
    h.advance(61)
    assert h.decided(60) and len(gw.orders_received()) == 1  # trading again, nothing sent twice


def test_history_timeout_after_a_reconnect_is_retried(harness: H, gw: FakeGateway) -> None:
    h = _started(harness, gateway=FAST)
    gw.fail_history("SPY", 0, times=2)  # the next two requests get no answer
    gw.drop_connections()
    assert h.until(lambda: h.runner.state in ("disconnected", "resubscribing"), timeout=5)
    assert h.until(lambda: h.runner.state == "ready", timeout=15)
    assert "history_unavailable" in _kinds(h) and h.runner.metrics["reconnects"] == 1
    h.advance(61)
    assert h.decided(60) and len(gw.orders_received()) == 1


def test_bridge_stop_works_while_history_is_missing(harness: H, gw: FakeGateway) -> None:
    h = _started(harness, gateway=FAST)
    gw.fail_history("SPY", 162)
    gw.connectivity_restored(data_lost=True)
    assert h.until(lambda: h.runner.state == "resubscribing", timeout=5)
    cid = h.ledger.request_control("stop", {"flatten": True, "by": "test"}, pd.Timestamp.now(tz="UTC"), "test")
    assert h.until(lambda: (h.ledger.control(cid) or {}).get("result"), timeout=10)
    result = json.loads(h.ledger.control(cid)["result"])
    assert result["kill_switch"] and result["flatten"] and "error" not in result, result
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled(), timeout=10)
    assert h.ledger.risk_state().kill_switch


def test_a_transient_error_escaping_a_step_does_not_end_run(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.errors import BrokerError

    h = _started(harness)
    calls = {"n": 0}
    real = h.runner.tasks.run

    def flaky() -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise BrokerError("IB request timed out", found="reqPositions")
        real()

    monkeypatch.setattr(h.runner.tasks, "run", flaky)
    h.runner.run(until=lambda: calls["n"] >= 3, poll=0.01)
    assert calls["n"] >= 3 and not h.runner.ctx.state.stop
    assert "transient_error" in _kinds(h)


def test_hmds_farm_outage_is_survived(harness: H, gw: FakeGateway) -> None:
    """2105 + 10182 on the live bars, history requests unanswered: wait, retry, trade again on 2106."""
    h = _started(harness, gateway=FAST)
    gw.data_farm_down("hmds")
    assert h.until(lambda: h.runner.state == "resubscribing", timeout=10)
    h.until(lambda: False, timeout=1.0)  # a few unanswered retries
    assert h.runner.state == "resubscribing"
    gw.data_farm_up("hmds")
    assert h.until(lambda: h.runner.state == "ready", timeout=10)
    h.advance(61)
    assert h.decided(60) and len(gw.orders_received()) == 1


def test_history_error_at_start_is_retried_not_fatal(harness: H, gw: FakeGateway) -> None:
    """A restart (after a crash, under a supervisor) may hold positions: it must not exit on a 162."""
    h = harness(seed=60, gateway=FAST)
    gw.fail_history("SPY", 162, times=2)
    h.start()
    assert h.runner.state == "resubscribing" and "history_unavailable" in _kinds(h)
    assert h.until(lambda: h.runner.state == "ready" and h.orders() and h.settled(), timeout=10)
    assert len(gw.orders_received()) == 1


def test_a_runner_process_without_history_stays_up_until_stopped(
    gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path: Path
) -> None:
    """The real process: a persistent 162 keeps it alive (alerting), `bridge stop --shutdown` ends it with exit 0."""
    import signal
    import subprocess
    import sys

    from ._harness import daily
    from .test_processes import ROOT, bridge, env, read, toml, wait_for

    ledger = tmp_path / "l.sqlite"
    gw.seed_bars("SPY", daily(spy_daily.iloc[:60]))
    gw.fail_history("SPY", 162)
    cfg = toml(tmp_path, gw, ledger)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "run", "--paper", "--config", str(cfg)],
        env=env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: [r["state"] for r in read(ledger, "SELECT state FROM runs")] == ["resubscribing"]), (
            "runner not resubscribing"
        )
        time.sleep(1.0)
        assert proc.poll() is None  # alive, retrying
        stopped = bridge("stop", "--shutdown", "--ledger", str(ledger), "--timeout", "20")
        assert stopped.returncode == 0, stopped.stderr[-2000:]
        assert json.loads(stopped.stdout)["handled_by"].startswith("runner")
        err = proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert '"event": "transient_retry"' in err and gw.orders_received() == []


def test_bridge_stop_while_disconnected_cancels_and_flattens_once_back(harness: H, gw: FakeGateway) -> None:
    """The kill switch latches at once; the cancel and flatten run as soon as the gateway is back
    (not "must be retried" by the operator)."""
    h = _started(harness)
    assert h.until(lambda: gw.position("SPY")[0] > 0 and "SPY" in h.broker.positions())
    gw.pause_accepting()
    gw.drop_connections()
    assert h.until(lambda: h.runner.state == "disconnected", timeout=5)
    cid = h.ledger.request_control("stop", {"flatten": True, "by": "test"}, pd.Timestamp.now(tz="UTC"), "test")
    assert h.until(lambda: (h.ledger.control(cid) or {}).get("result"), timeout=5)
    result = json.loads(h.ledger.control(cid)["result"])
    assert result["kill_switch"] and "when the gateway is back" in result["error"]
    assert h.ledger.risk_state().kill_switch
    gw.resume_accepting()
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled(), timeout=15)
    flat = [o for o in h.orders() if o["purpose"] == "flatten"]
    assert len(flat) == 1 and flat[0]["status"] == "filled"
    assert "stop_deferred" in _kinds(h) and "stop_done" in _kinds(h)


def test_a_request_the_gateway_never_answers_times_out_and_is_retried(harness: H, gw: FakeGateway) -> None:
    """ib_async's blocking requests wait forever by default (RequestTimeout 0): a hung gateway
    would freeze the loop, and with it `bridge stop`. They time out after gateway.request_timeout."""
    import signal

    def hung(signum: int, frame: object) -> None:
        raise AssertionError("the runner's loop is stuck in a request the gateway never answers")

    h = _started(harness, gateway=FAST)
    gw.silence(7, times=2)  # reqExecutions: the next two get no answer
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        gw.connectivity_restored(data_lost=False)  # 1102: reconcile -> reqExecutions
        assert h.until(lambda: h.runner.state == "resubscribing", timeout=10)
        assert "transient_error" in _kinds(h)
        assert h.until(lambda: h.runner.state == "ready", timeout=10)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    h.advance(61)
    assert h.decided(60) and len(gw.orders_received()) == 1


def test_a_stop_whose_flatten_hits_a_dead_socket_flattens_after_the_reconnect(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = _started(harness)
    assert h.until(lambda: gw.position("SPY")[0] > 0 and "SPY" in h.broker.positions())
    real = h.broker.place

    def dead_then_place(req: object) -> object:
        monkeypatch.setattr(h.broker, "place", real)
        gw.pause_accepting()
        gw.drop_connections()
        time.sleep(0.1)
        return real(req)  # raises: the socket is dead

    monkeypatch.setattr(h.broker, "place", dead_then_place)
    cid = h.ledger.request_control("stop", {"flatten": True, "by": "test"}, pd.Timestamp.now(tz="UTC"), "test")
    assert h.until(lambda: (h.ledger.control(cid) or {}).get("result"), timeout=10)
    assert json.loads(h.ledger.control(cid)["result"]).get("deferred")
    gw.resume_accepting()
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled(), timeout=15)
    flat = [o for o in h.orders() if o["purpose"] == "flatten"]
    assert [o["status"] for o in flat] == ["void", "filled"]  # the unsent one proven absent, then a new one
    assert len([o for o in gw.orders_received() if o.action == "SELL"]) == 1


def test_a_daily_loss_kill_interrupted_by_a_drop_is_finished_after_the_reconnect(
    harness: H, gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loss check runs in the loop: a drop inside its cancel/flatten must not end the runner,
    and the flatten must still happen once the gateway is back."""
    h = _started(harness, risk={"daily_loss_limit_pct": 0.005})
    assert h.until(lambda: gw.position("SPY")[0] > 0 and "SPY" in h.broker.positions())
    from bridge.errors import BrokerDisconnected

    def drop(*_: object) -> None:
        monkeypatch.undo()
        gw.pause_accepting()
        gw.drop_connections()
        raise BrokerDisconnected("not connected to IB: global cancel not sent")

    monkeypatch.setattr(h.broker, "cancel_all", drop)
    gw.set_price("SPY", float(h.frame["open"].iloc[60]) * 0.9)
    assert h.until(lambda: h.ledger.risk_state().kill_switch and h.runner.state == "disconnected", timeout=10)
    gw.resume_accepting()
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled(), timeout=15)
    assert "stop_done" in _kinds(h) and h.runner.state == "ready"


def test_the_daily_loss_limit_is_watched_while_history_is_missing(harness: H, gw: FakeGateway) -> None:
    h = _started(harness, gateway=FAST, risk={"daily_loss_limit_pct": 0.005})
    assert h.until(lambda: gw.position("SPY")[0] > 0 and "SPY" in h.broker.positions())
    gw.fail_history("SPY", 162)
    gw.connectivity_restored(data_lost=True)
    assert h.until(lambda: h.runner.state == "resubscribing", timeout=5)
    gw.set_price("SPY", float(h.frame["open"].iloc[60]) * 0.9)  # the account marks move; no bars
    assert h.until(lambda: h.ledger.risk_state().kill_switch, timeout=10)
    assert h.until(lambda: gw.position("SPY")[0] == 0.0 and h.settled(), timeout=10)
    assert "daily loss" in h.ledger.risk_state().reason
