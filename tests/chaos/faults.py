"""The faults of a schedule, fired into a running :class:`~tests.chaos.session.Session`.

``fire`` injects one drawn fault; the parts of a fault that happen later (restoring IB
connectivity, filling a resting order, ending a second runner, ``bridge resume``) are queued
on the session and run by ``do_pending`` at their bar or when the quiet phase starts.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from bridge.ledger.lease import lock_path, read_holder
from bridge.protection import split_ref
from tests.chaos.crashpoint import ENV as KILL_AFTER_WRITE
from tests.chaos.schedule import Fault
from tests.fakegw import FillPolicy

if TYPE_CHECKING:
    from tests.chaos.session import Session

READY_WAIT = 20.0  # seconds for a (re)started runner to reconcile and subscribe
HIST_REQ, EXEC_REQ = 20, 7  # TWS API message ids: reqHistoricalData, reqExecutions


def bridge(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m bridge ARGS`` as an operator's shell would run it."""
    from tests.chaos.session import ROOT, env

    return subprocess.run(
        [sys.executable, "-m", "bridge", *args], env=env(), cwd=ROOT, capture_output=True, timeout=120
    )


def fire(s: Session, f: Fault) -> None:
    """Inject ``f`` now (before the push of the bar it was drawn for)."""
    k, prm = f.kind, f.params
    s.rec.faults.append({"bar": f.bar, "kind": k, **prm})
    t0 = time.time()
    cur = s.runners[0] if s.runners else None
    if k == "drop":
        s.gw.drop_connections()
        if cur is not None:
            took = s.ready_since(cur.client_id, t0)
            if took is not None:
                s.rec.recovery["drop"].append(took)
    elif k == "kill" and cur is not None:
        s.push(s.k)
        s.k += 1
        time.sleep(float(prm["delay"]))  # type: ignore[arg-type]
        s.kill_all()
        s.restart("kill", time.time(), bool(prm["other_id"]))
    elif k == "kill_write":
        s.kill_all()
        p = s.start_runner(s.other_id() if prm["other_id"] else None, **{KILL_AFTER_WRITE: str(prm["after"])})
        p.ended_by = "crashpoint"
        s.ready_since(p.client_id, time.time() - 0.5)
        for _ in range(2):  # the k-th write comes at start-up or within the next bars
            if p.popen.poll() is not None:
                break
            s.step()
        if p.popen.poll() is None:
            s.kill(p)  # fewer than k writes so far: a plain SIGKILL instead
        s.check_alive()
        s.restart("kill_write", time.time())
    elif k == "kill_after_place":
        s.kill_all()
        p = s.start_runner(None, BRIDGE_TEST_CRASH_AFTER_PLACE="1")
        p.ended_by = "crashpoint"
        s.ready_since(p.client_id, time.time() - 0.5)
        for _ in range(2):  # dies at its first placeOrder: at start-up or on one of the next bars
            if p.popen.poll() is not None:
                break
            s.step()
        if p.popen.poll() is None:
            s.kill(p)
        s.check_alive()
        s.restart("kill_after_place", time.time(), bool(prm["other_id"]))
    elif k == "restart_other_id":
        s.gw.script(FillPolicy.rest(), symbol=str(prm["symbol"]), once=True)
        s.push(s.k)
        s.k += 1
        time.sleep(0.5)
        s.kill_all()
        s.restart("restart_other_id", time.time(), True)
    elif k == "concurrent":
        s.kill_all()
        a = s.start_runner()
        b = s.start_runner(a.client_id if prm["same_id"] else a.client_id + 1)
        a.ended_by = b.ended_by = "concurrent"
        s.ready_since(a.client_id, t0)
        s.pending.append((f.bar + 2, "end_concurrent", None))
    elif k == "stop_alive":
        stop_command(s)
        if prm["resume"]:
            s.pending.append((f.bar + 1, "resume", None))
    elif k == "stop_dead":
        s.kill_all()
        stop_command(s)
        s.restart("stop_dead", time.time())
        if prm["resume"]:
            s.pending.append((f.bar + 1, "resume", None))
    elif k == "gateway_restart":
        s.gw.pause_accepting()
        if prm.get("reuse_ids"):
            s.gw.restart(next_order_id=1)  # drops everyone; transmitted orders survive, ids start again
        else:
            s.gw.drop_connections()
        time.sleep(float(prm["down"]))  # type: ignore[arg-type]
        s.gw.resume_accepting()
        if cur is not None:
            s.ready_since(cur.client_id, t0)
    elif k == "reject":
        s.gw.script(
            FillPolicy.reject("chaos: rejected by schedule"),
            symbol=str(prm["symbol"]),
            action=str(prm["action"]),
            once=True,
        )
    elif k == "partial":
        s.gw.script(FillPolicy.auto(pieces=2, partial=1), symbol=str(prm["symbol"]), once=True)
    elif k == "resting":
        s.gw.script(FillPolicy.rest(), symbol=str(prm["symbol"]), once=True)
        s.pending.append((f.bar + int(prm["fill_after"]), "fill_resting", (str(prm["symbol"]), bool(prm["drop"]))))  # type: ignore[call-overload]
    elif k in ("hist_162", "hist_321"):
        sym = str(prm["symbol"])
        s.gw.fail_history(sym, int(k[-3:]))
        if k == "hist_162":
            s.gw.drop_connections()
        else:
            s.gw.connectivity_restored(data_lost=True)
        time.sleep(float(prm["for"]))  # type: ignore[arg-type]
        s.gw.clear_history_failure(sym)
    elif k == "err_1100":
        s.gw.connectivity_lost()
        s.pending.append((f.bar + int(prm["bars"]), "restore", bool(prm["data_lost"])))  # type: ignore[call-overload]
    elif k == "err_farm":
        code = int(prm["code"])  # type: ignore[call-overload]
        req = -1
        if code == 10182 and cur is not None:
            hist = s.gw.received(msg_id=HIST_REQ, client_id=cur.client_id)
            req = int(hist[-1].fields[1]) if hist else -1  # fields: msg id, reqId, ...
        s.gw.inject_error(code, None if code != 10182 else "Failed to request live updates (disconnected).", req_id=req)
    elif k == "missing_bar":
        s.k += 1  # bar k is never pushed
    elif k == "stale_bar":
        old = max(s.k - 3, 0)
        sym = str(prm["symbol"])
        row = s.frames[sym].iloc[old]
        s.gw.push_bar(
            sym,
            {
                "time": s.frames[sym].index[old],
                "open": float(row["open"]),
                "high": float(row["high"]) + 5,
                "low": float(row["low"]),
                "close": float(row["close"]) + 4,
                "volume": 5.0,
            },
        )


def stop_command(s: Session) -> None:
    """`bridge stop --flatten` from another process (it finds the runner, or connects itself)."""
    out = bridge("stop", "--flatten", "--ledger", str(s.ledger), "--timeout", "3", "--port", str(s.gw.port))
    (s.folder / f"stop{len(s.rec.faults)}.err").write_bytes(out.stderr)


def do_pending(s: Session, action: str, arg: Any) -> None:
    """The delayed part of a fault."""
    if action == "end_concurrent":
        # the survivor is the lock holder, not the first started: the refused one may still be
        # exiting (message written, interpreter not gone yet) and must not become "the runner"
        live = [p for p in s.runners if p.popen.poll() is None]
        holder = read_holder(lock_path(s.ledger)).get("pid")
        keep = next((p for p in live if p.pid == holder), live[0] if live else None)
        for p in live:
            if p is keep:
                p.ended_by = ""
            else:
                s.kill(p, "term")
        s.check_alive()
    elif action == "resume":
        bridge("resume", "--yes", "--ledger", str(s.ledger))
    elif action == "restore":
        s.gw.connectivity_restored(data_lost=bool(arg))
    elif action == "fill_resting":
        sym, drop = arg
        if drop:
            s.gw.drop_connections()
        for o in s.gw.orders():
            if (
                o.symbol == sym
                and o.status in ("Submitted", "PreSubmitted")
                and o.order_ref.startswith("ql:")
                and split_ref(o.order_ref) is None  # the resting order of the fault, not a protective child
            ):
                try:
                    s.gw.fill_order(o.order_ref)
                except Exception:  # noqa: BLE001 - the order may have been cancelled meanwhile
                    pass
