"""The protection timeline of a bracket schedule: what the gateway held, sampled while it runs.

Invariant 8 (``positions_protected`` is its final-state form) needs to know *when* a position
was without its protective stop, and how many reconciles passed meanwhile. The gateway's own
state is the truth: a thread samples it every ``EVERY`` seconds (each symbol's position, the
quantity its active protective stops cover, whether a closing order of ours is working), and
the reconciles are the runner clients' ``reqAllOpenOrders`` (the first request of every
``Reconciler.run``, via ``IBBroker.sync``; ib_async's own connect sequence never sends it).

Sampling can miss a spell shorter than ``EVERY`` and starts a longer one up to ``EVERY`` late:
neither hides a spell that spans two reconciles (a reconcile takes longer than a sample).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.protection import split_ref

EVERY = 0.05  # seconds between samples
ALL_OPEN_REQ = 16  # TWS API message id of reqAllOpenOrders: one per reconcile
LIVE = ("Submitted", "PreSubmitted", "PendingSubmit", "ApiPending")
STOPS = ("STP", "TRAIL")
TOL = 1e-6


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    symbol: str
    position: float
    cover: float  # shares the active protective stops of ours on the closing side cover
    exiting: bool  # a closing order of ours (not a child) is working: the strategy is getting out

    @property
    def unprotected(self) -> bool:
        return abs(self.position) > TOL and self.cover + TOL < abs(self.position) and not self.exiting


def coverage(orders: Sequence[Any], symbol: str, position: float) -> tuple[float, bool]:
    """``(cover, exiting)`` of ``position`` in ``symbol`` from the gateway's orders (``OrderView``).

    A child protects only once active: IB holds a bracket's children until the parent has
    filled completely (the fake does too), so a child whose parent (found by ref) is not
    ``Filled`` covers nothing. A re-attached child has no parent at the gateway: active.
    """
    if abs(position) <= TOL:
        return 0.0, False
    closing = "SELL" if position > 0 else "BUY"
    status = {o.order_ref: o.status for o in orders}
    cover, exiting = 0.0, False
    for o in orders:
        if o.symbol != symbol or not o.order_ref.startswith("ql:") or o.action != closing or o.status not in LIVE:
            continue
        child = split_ref(o.order_ref)
        if child is None:
            exiting = True
        elif o.order_type in STOPS and (not o.parent_id or status.get(child[0]) == "Filled"):
            cover += o.remaining
    return cover, exiting


@dataclass(frozen=True)
class Spell:
    symbol: str
    start: float
    end: float
    position: float  # at the spell's first sample
    reconciles: int  # reconciles that started inside the spell


def spells(samples: Iterable[Sample], reconciles: Sequence[float]) -> list[Spell]:
    """Maximal runs of unprotected samples per symbol, each with the reconciles that began inside it."""
    out: list[Spell] = []
    open_: dict[str, tuple[float, float, float]] = {}  # symbol -> (start, position, last seen)

    def close(sym: str, end: float) -> None:
        start, pos, _ = open_.pop(sym)
        out.append(Spell(sym, start, end, pos, sum(1 for t in reconciles if start <= t <= end)))

    for s in sorted(samples, key=lambda s: s.at):
        if s.unprotected:
            start, pos, _ = open_.get(s.symbol, (s.at, s.position, s.at))
            open_[s.symbol] = (start, pos, s.at)
        elif s.symbol in open_:
            close(s.symbol, s.at)
    for sym in list(open_):
        close(sym, open_[sym][2])
    return sorted(out, key=lambda sp: (sp.start, sp.symbol))


class Sampler:
    """A thread sampling the gateway's positions and protective orders every ``EVERY`` seconds."""

    def __init__(self, gw: Any, symbols: Sequence[str]) -> None:
        self.gw = gw
        self.symbols = tuple(symbols)
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples

    def sample(self) -> None:
        orders = self.gw.orders()
        at = time.time()
        for sym in self.symbols:
            qty = self.gw.position(sym)[0]
            cover, exiting = coverage(orders, sym, qty)
            self.samples.append(Sample(at, sym, qty, cover, exiting))

    def _loop(self) -> None:
        while not self._stop.wait(EVERY):
            try:
                self.sample()
            except Exception:  # noqa: BLE001 - the gateway is stopping: the timeline ends here
                return
