"""Run one fault schedule: the fake IB Gateway in this process, ``bridge run --paper`` as real
subprocesses, bars pushed fast through the fake's ``push_bar`` and faults fired as drawn.

The strategy is ``tests/bridge/flip_strategy.py`` on a zig-zag series (an order on every bar
of the fault phase); the quiet phase then pushes rising bars (target long) and falling bars
(target flat) so convergence has a known answer. Everything observed (processes, faults,
recovery times, alerts) is returned as a :class:`Record` for :mod:`tests.chaos.invariants`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bridge.protection import split_ref
from tests.chaos import faults
from tests.chaos.faults import EXEC_REQ, HIST_REQ, READY_WAIT
from tests.chaos.schedule import CONVERGE_BARS, Fault, Schedule
from tests.chaos.timeline import ALL_OPEN_REQ, Sample, Sampler
from tests.fakegw import FakeGateway, FillPolicy

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 4
HISTORY_BARS = 6
BAR_WAIT = 1.5  # seconds to wait for a healthy runner's decision on a bar
SETTLE_WAIT = 0.5  # seconds more for that decision's orders to fill
BASE = {"SPY": 100.0, "QQQ": 200.0}
HOLD = 11.0  # seconds a bracket schedule holds a partly filled entry (Schedule.hold_partial)


@dataclass
class Proc:
    """One ``bridge`` runner process and why it ended (if it did)."""

    popen: subprocess.Popen[bytes]
    client_id: int
    err_path: Path
    started: float
    ended_by: str = ""  # "" (alive or died on its own), "kill", "term", "refused"

    @property
    def pid(self) -> int:
        return self.popen.pid


@dataclass
class Record:
    schedule: Schedule
    folder: Path
    ledger: Path
    faults: list[dict[str, Any]] = field(default_factory=list)
    recovery: dict[str, list[float]] = field(default_factory=lambda: {"drop": [], "kill": []})
    procs: list[Proc] = field(default_factory=list)
    deaths: list[str] = field(default_factory=list)  # unexpected runner exits (invariant 4)
    converge: list[dict[str, Any]] = field(default_factory=list)  # per phase and symbol (invariant 5)
    gw_orders: list[Any] = field(default_factory=list)
    gw_executions: list[Any] = field(default_factory=list)
    gw_positions: dict[str, float] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    timeline: list[Sample] = field(default_factory=list)  # bracket runs: the gateway sampled (invariant 8)
    reconciles: list[tuple[float, int]] = field(default_factory=list)  # (time, client id) of each reqAllOpenOrders
    held_partial: bool = False  # a partly filled entry was held across two periodic reconciles


def frame(n: int, base: float, fresh_entry: bool = False) -> pd.DataFrame:
    """Daily XNYS sessions: a zig-zag for the fault phase, then up- and down-ramps of
    ``CONVERGE_BARS`` bars each for the quiet phase (target long, then flat). With
    ``fresh_entry`` (bracket schedules) the up-ramp starts one step below the zig-zag: a down
    close first, so the long target is a fresh entry whatever the zig-zag left (a position
    stopped out keeps research's target and is not re-entered)."""
    from bridge.market import MarketCalendar

    sessions = MarketCalendar().cal.sessions_in_range("2019-01-02", "2024-12-31")[:n]
    quiet = 2 * CONVERGE_BARS
    zig = np.where(np.arange(n - quiet) % 2 == 0, base, base + 1.0)
    up = zig[-1] + 0.5 * np.arange(1, CONVERGE_BARS + 1) - (1.5 if fresh_entry else 0.0)
    down = up[-1] - 0.5 * np.arange(1, CONVERGE_BARS + 1)
    close = np.concatenate((zig, up, down))
    open_ = np.concatenate(([base], close[:-1]))
    idx = pd.DatetimeIndex(sessions)
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.2,
            "low": np.minimum(open_, close) - 0.2,
            "close": close,
            "volume": 1e6,
        },
        index=idx,
    )


def config(folder: Path, gw: FakeGateway, sched: Schedule, ledger: Path) -> Path:
    syms = ", ".join(f'"{s}"' for s in sched.symbols)
    text = f"""
[gateway]
port = {gw.port}
client_id = {sched.client_id}
connect_timeout = 2.0
connect_attempts = 40
backoff_initial = 0.05
backoff_max = 0.3
request_timeout = 2.0
[strategy]
name = "tests/bridge/flip_strategy.py"
symbols = [{syms}]
params = "{sched.exits}"
[costs]
slippage_bps = 0.0
[orders]
cancel_wait = 0.5
[risk]
market_hours = false
max_orders_per_minute = 100000
max_orders_per_day = 100000
max_order_notional = 1e9
approval_threshold = 0
[data]
max_bar_age = 1e10
history_bars = {HISTORY_BARS}
[ledger]
path = "{ledger}"
synchronous = "NORMAL"
"""
    if sched.exits:  # periodic reconciles every 5 s: invariant 8 bounds protection by reconciles
        text += "[reconcile]\ncheck_every = 5.0\n"
    path = folder / "bridge.toml"
    path.write_text(text)
    return path


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "CHAOS_"))}
    out.update(
        PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")), **extra
    )
    return out


def query(ledger: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    if not ledger.exists():
        return []
    for _ in range(50):
        try:
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
            db.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in db.execute(sql, params).fetchall()]
            finally:
                db.close()
        except sqlite3.OperationalError:  # no such table yet, or locked while created
            time.sleep(0.02)
    return []


class Session:
    """Executes one schedule. Use :func:`run_schedule`."""

    def __init__(self, sched: Schedule, folder: Path) -> None:
        self.s = sched
        self.folder = folder
        self.ledger = folder / "ledger.sqlite"
        # Faults that push bars themselves (kills) or skip one consume at most two bars each: the
        # zig-zag has that much slack, so the ramps always start at the same bar.
        self.zig = WARMUP + sched.fault_bars + 2 * len(sched.faults) + 1
        self.n = self.zig + 2 * CONVERGE_BARS
        self.frames = {sym: frame(self.n, BASE.get(sym, 100.0), bool(sched.exits)) for sym in sched.symbols}
        self.gw = FakeGateway(cash=100_000.0).start()
        self.rec = Record(sched, folder, self.ledger)
        self.cfg = config(folder, self.gw, sched, self.ledger)
        self.runners: list[Proc] = []
        self.client_id = sched.client_id
        self.k = WARMUP  # next bar to push
        self.pending: list[tuple[int, str, Any]] = []  # (bar, action, arg): delayed parts of faults
        for sym, f in self.frames.items():
            self.gw.seed_bars(sym, f.iloc[:WARMUP])
        self.sampler = Sampler(self.gw, sched.symbols) if sched.exits else None

    # --- processes -------------------------------------------------------------------------
    def start_runner(self, client_id: int | None = None, **extra_env: str) -> Proc:
        cid = self.client_id if client_id is None else client_id
        err = self.folder / f"runner{len(self.rec.procs)}-c{cid}.err"
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.chaos.crashpoint",
                "run",
                "--paper",
                "--config",
                str(self.cfg),
                "--client-id",
                str(cid),
            ],
            env=env(**extra_env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err.open("wb"),
        )
        p = Proc(popen, cid, err, time.monotonic())
        self.rec.procs.append(p)
        self.runners.append(p)
        return p

    def kill(self, p: Proc, how: str = "kill") -> None:
        if p.popen.poll() is None:
            p.popen.send_signal(signal.SIGKILL if how == "kill" else signal.SIGTERM)
            p.ended_by = how
        try:
            p.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait(timeout=5)
            p.ended_by = "kill"
        if p in self.runners:
            self.runners.remove(p)

    def kill_all(self, how: str = "kill") -> None:
        for p in list(self.runners):
            self.kill(p, how)

    def check_alive(self) -> None:
        """Invariant 4's evidence: a runner that exited while nobody stopped or killed it."""
        for p in list(self.runners):
            rc = p.popen.poll()
            if rc is None:
                continue
            self.runners.remove(p)
            text = p.err_path.read_text(errors="replace") if p.err_path.exists() else ""
            tail = text[-600:]
            if p.ended_by == "concurrent" and rc > 0 and "Traceback" not in text:
                p.ended_by = "refused"  # the second of two runners refused to start, with a message
                continue
            if p.ended_by == "crashpoint" and rc == -signal.SIGKILL:
                continue
            self.rec.deaths.append(
                f"runner pid {p.pid} (client {p.client_id}) exited with code {rc} at bar {self.k}: "
                f"{_last_message(tail)}"
            )

    def ready_since(self, cid: int, t0: float, timeout: float = READY_WAIT) -> float | None:
        """Seconds from ``t0`` (time.time) until client ``cid`` reconciled (reqExecutions) and re-requested bars."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ex = [m.at for m in self.gw.received(msg_id=EXEC_REQ, client_id=cid) if m.at >= t0]
            hist = [m.at for m in self.gw.received(msg_id=HIST_REQ, client_id=cid) if m.at >= t0]
            if ex and len(hist) >= len(self.s.symbols):
                return max(ex[0], sorted(hist)[len(self.s.symbols) - 1]) - t0
            if not self.runners or all(p.popen.poll() is not None for p in self.runners):
                return None
            time.sleep(0.02)
        return None

    # --- bars --------------------------------------------------------------------------------
    def push(self, i: int, sym: str | None = None) -> None:
        for s in [sym] if sym else self.s.symbols:
            row = self.frames[s].iloc[i]
            self.gw.push_bar(
                s,
                {
                    "time": self.frames[s].index[i],
                    **{c: float(row[c]) for c in ("open", "high", "low", "close", "volume")},
                },
            )

    def partly_filled_entry(self, sym: str) -> bool:
        """An entry of ours (not a child) at the gateway filled in part and still working."""
        return any(
            o.symbol == sym
            and o.order_ref.startswith("ql:")
            and split_ref(o.order_ref) is None
            and o.status in ("Submitted", "PreSubmitted")
            and 0 < o.filled < o.quantity
            for o in self.gw.orders()
        )

    def decided(self, i: int) -> bool:
        t = self.frames[self.s.symbols[0]].index[i].tz_localize("UTC").isoformat()
        got = query(self.ledger, "SELECT COUNT(DISTINCT symbol) n FROM decisions WHERE bar_time = ?", (t,))
        return bool(got) and got[0]["n"] >= len(self.s.symbols)

    def settled(self) -> bool:
        """No order of the decision is still open (protective children rest by design)."""
        rows = query(
            self.ledger,
            "SELECT COUNT(*) n FROM orders WHERE status IN ('intent','sent','working','partially_filled','pending')"
            " AND role IS NULL",
        )
        return bool(rows) and rows[0]["n"] == 0

    def wait_bar(self, i: int, timeout: float = BAR_WAIT) -> bool:
        """Wait for the decision on bar ``i`` and its orders to settle; an order stuck open (a fault
        may leave one) gets ``SETTLE_WAIT`` s, not the whole timeout, so the schedule keeps its pace."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.popen.poll() is None for p in self.runners):
            if self.decided(i):
                deadline = min(deadline, time.monotonic() + SETTLE_WAIT)
                while time.monotonic() < deadline:
                    if self.settled():
                        return True
                    time.sleep(0.02)
                return False
            time.sleep(0.02)
        return False

    # --- faults ------------------------------------------------------------------------------
    def other_id(self) -> int:
        self.client_id = self.client_id + 2 if self.client_id < 60 else 11
        return self.client_id

    def restart(self, kind: str, t0: float, other: bool = False) -> None:
        """Start a runner again (under the next client id if ``other``); time its recovery after a kill."""
        p = self.start_runner(self.other_id() if other else None)
        took = self.ready_since(p.client_id, t0)
        if took is not None and kind in ("kill", "kill_write", "kill_after_place"):
            self.rec.recovery["kill"].append(took)

    def due_actions(self, fault_bar: int) -> None:
        for item in [x for x in self.pending if x[0] <= fault_bar]:
            self.pending.remove(item)
            faults.do_pending(self, item[1], item[2])

    # --- the whole run ---------------------------------------------------------------------
    def run(self) -> Record:
        t_start = time.monotonic()
        if self.sampler is not None:
            self.sampler.start()
        try:
            p = self.start_runner()
            self.ready_since(p.client_id, time.time() - 1.0)
            self.wait_bar(WARMUP - 1, READY_WAIT)
            by_bar: dict[int, list[Fault]] = {}
            for f in self.s.faults:
                by_bar.setdefault(f.bar, []).append(f)
            for j in range(self.s.fault_bars):
                self.due_actions(j)
                for f in by_bar.get(j, []):
                    faults.fire(self, f)
                self.check_alive()
                if not self.runners:  # died on its own (recorded): restart it, as a supervisor would
                    self.restart("supervisor", time.time())
                self.step()
            self.quiet()
        finally:
            self.finish()
        self.rec.seconds = time.monotonic() - t_start
        return self.rec

    def step(self) -> None:
        i = self.k
        if i >= self.n:
            return
        self.push(i)
        self.k += 1
        self.wait_bar(i)

    def quiet(self) -> None:
        """Faults stop: undo lingering ones, make sure a runner is up, then push the two ramps."""
        self.gw.clear_scripts()
        for sym in self.s.symbols:
            self.gw.clear_history_failure(sym)
        for _bar, action, arg in sorted(self.pending, key=lambda x: x[0]):
            faults.do_pending(self, action, arg)
        self.pending.clear()
        self.check_alive()
        if not self.runners:
            self.restart("quiet", time.time())
        while self.k < self.zig:  # the rest of the zig-zag (every session is pushed: no gap)
            self.step()
        hold = bool(self.s.exits) and self.s.hold_partial
        if hold:  # the long ramp's entry fills partly: its children stay inactive (IB's bracket rule)
            self.gw.script(FillPolicy.auto(pieces=2, partial=1), symbol=self.s.symbols[0], action="BUY", once=True)
        for phase, want, end in (("long", 1, self.zig + CONVERGE_BARS), ("flat", 0, self.n)):
            first = self.k
            while self.k < end:
                self.step()
                if hold and self.partly_filled_entry(self.s.symbols[0]):
                    hold = False
                    self.rec.held_partial = True
                    time.sleep(HOLD)  # two periodic reconciles (every 5 s) pass with the position as it is
            self.check_alive()
            # The last bar of each ramp is decided once the next bar completes it: wait for it.
            self.wait_bar(self.k - 1, 5.0)
            execs = self.gw.executions()
            for sym in self.s.symbols:
                ours = [e.order_ref for e in execs if e.instrument.symbol == sym and e.order_ref.startswith("ql:")]
                self.rec.converge.append(
                    {
                        "phase": phase,
                        "want": want,
                        "symbol": sym,
                        "position": self.gw.position(sym)[0],
                        "from_bar": first,
                        "to_bar": self.k - 1,
                        "last_fill": ours[-1] if ours else None,
                    }
                )

    def finish(self) -> None:
        """Stop the runners (SIGTERM, as an operator would), then snapshot broker and logs."""
        self.check_alive()
        time.sleep(0.3)  # commission reports trail fills
        self.kill_all("term")
        if self.sampler is not None:
            self.rec.timeline = self.sampler.stop()
            runners = {p.client_id for p in self.rec.procs}
            self.rec.reconciles = [
                (m.at, m.client_id) for m in self.gw.received(msg_id=ALL_OPEN_REQ) if m.client_id in runners
            ]
        self.rec.gw_orders = self.gw.orders()
        self.rec.gw_executions = self.gw.executions()
        self.rec.gw_positions = {s: self.gw.position(s)[0] for s in self.s.symbols}
        for path in sorted(self.folder.glob("*.err")):
            for line in path.read_text(errors="replace").splitlines():
                if '"event": "alert"' in line:
                    try:
                        self.rec.alerts.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
        self.gw.stop()


def _last_message(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        try:
            return str(json.loads(line).get("msg", line))[:300]
        except json.JSONDecodeError:
            if line.strip():
                return line.strip()[:300]
    return "(no output)"


def run_schedule(sched: Schedule, folder: Path | None = None) -> Record:
    """Run ``sched`` in ``folder`` (a fresh temporary folder by default) and return what happened."""
    folder = folder or Path(tempfile.mkdtemp(prefix=f"chaos-{sched.seed}-"))
    folder.mkdir(parents=True, exist_ok=True)
    return Session(sched, folder).run()
