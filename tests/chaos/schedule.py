"""A fault schedule drawn from one seed: which faults, at which bar, with which parameters.

Pure and deterministic: ``draw(seed)`` always returns the same schedule, so a failing seed
replays the same faults at the same bars (timing inside a bar, e.g. exactly which ledger
write a SIGKILL lands after, still depends on the machine's speed).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

#: Every fault kind the suite injects, with its relative weight in a draw.
KINDS: dict[str, int] = {
    "drop": 4,  # gateway closes the runner's socket
    "kill": 4,  # SIGKILL of the runner at a random moment after a bar, restart
    "kill_write": 4,  # SIGKILL right after the runner's k-th ledger write, restart
    "kill_after_place": 2,  # SIGKILL between placeOrder and recording it (bridge's own hook)
    "restart_other_id": 3,  # SIGKILL with an order working, restart under another client id
    "concurrent": 2,  # two runners started at once on the same ledger
    "stop_alive": 2,  # `bridge stop --flatten` while the runner runs
    "stop_dead": 2,  # `bridge stop --flatten` after the runner was killed
    "gateway_restart": 3,  # gateway drops everyone and refuses connections for a while
    "reject": 4,  # IB 201 on the next order of a symbol (entry or exit)
    "partial": 3,  # next order fills partly, the rest keeps working
    "resting": 3,  # next order rests unfilled; filled later (maybe while away)
    "hist_162": 2,  # history request fails with 162, then a reconnect re-requests it
    "hist_321": 2,  # history request fails with 321 after an IB 1101 resync
    "err_1100": 3,  # IB 1100, then 1101 or 1102 a few bars later
    "err_farm": 3,  # data-farm notices 2103/2105, or 10182 on the bar subscription
    "missing_bar": 2,  # a session's bar never arrives
    "stale_bar": 2,  # an old bar is pushed again with other values
}

#: Bars of the quiet phase per target (long, then flat): faults stop, the position must converge.
CONVERGE_BARS = 8

#: Exit rules of a bracket schedule (``draw(seed, brackets=True)``), tight for the zig-zag (closes
#: alternate base and base + 1, wicks 0.2; a long is held through a falling bar): a 0.5% stop
#: fills on most holding bars, a 0.15% target is touched first on a falling bar's way up (the
#: fake's path is open-high-low-close on a falling bar), a 0.4% trail fills below its mark, and
#: wide levels rest untouched until the strategy's exit cancels them.
EXIT_MENU = (
    "sl_stop=0.005",
    "sl_stop=0.005,tp_stop=0.0015",
    "sl_trail=0.004",
    "sl_stop=0.02,tp_stop=0.04",
)


@dataclass(frozen=True)
class Fault:
    bar: int  # fault-phase bar index (0-based) before whose push the fault fires
    kind: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    seed: int
    symbols: tuple[str, ...]
    client_id: int
    fault_bars: int
    faults: tuple[Fault, ...]
    exits: str = ""  # exit rules in [strategy] params: every entry goes out as a bracket
    #: bracket schedules: the long ramp's entry fills in part and is held ~11 s (two periodic
    #: reconciles): IB keeps a bracket's children inactive until the parent fills completely
    hold_partial: bool = False

    def describe(self) -> str:
        parts = [f"{f.bar}:{f.kind}" + (f"{f.params}" if f.params else "") for f in self.faults]
        return (
            f"seed {self.seed}: {','.join(self.symbols)} client {self.client_id}, {self.fault_bars} bars, "
            + (f"brackets {self.exits}{' (partial entry held)' if self.hold_partial else ''}, " if self.exits else "")
            + "faults "
            + "; ".join(parts)
        )


def _params(kind: str, rng: random.Random, symbols: tuple[str, ...]) -> dict[str, object]:
    sym = rng.choice(symbols)
    if kind == "kill":
        return {"delay": round(rng.uniform(0.0, 0.25), 3), "other_id": rng.random() < 0.5}
    if kind == "kill_write":
        return {"after": rng.randint(1, 30), "other_id": rng.random() < 0.3}
    if kind == "kill_after_place":
        return {"other_id": rng.random() < 0.3}
    if kind == "restart_other_id":
        return {"symbol": sym}
    if kind == "concurrent":
        return {"same_id": rng.random() < 0.3}
    if kind in ("stop_alive", "stop_dead"):
        return {"resume": rng.random() < 0.6}
    if kind == "gateway_restart":
        return {"down": round(rng.uniform(0.2, 1.5), 3)}
    if kind == "reject":
        return {"symbol": sym, "action": rng.choice(("BUY", "SELL"))}
    if kind == "partial":
        return {"symbol": sym}
    if kind == "resting":
        return {"symbol": sym, "fill_after": rng.randint(1, 3), "drop": rng.random() < 0.5}
    if kind in ("hist_162", "hist_321"):
        return {"symbol": sym, "for": round(rng.uniform(0.3, 2.0), 3)}
    if kind == "err_1100":
        return {"bars": rng.randint(1, 3), "data_lost": rng.random() < 0.5}
    if kind == "err_farm":
        return {"code": rng.choice((2103, 2105, 10182))}
    if kind in ("missing_bar", "stale_bar"):
        return {"symbol": sym}
    return {}


def draw(seed: int, n_faults: tuple[int, int] = (2, 5), brackets: bool = False) -> Schedule:
    """The schedule of ``seed``: 1-2 symbols, 10-16 fault-phase bars, 2-5 faults; with
    ``brackets``, the same schedule whose strategy carries exit rules from :data:`EXIT_MENU`
    (drawn last, so the faults of a seed are the same with and without brackets)."""
    rng = random.Random(seed)
    symbols = ("SPY",) if rng.random() < 0.5 else ("SPY", "QQQ")
    client_id = rng.choice((11, 17, 21))
    fault_bars = rng.randint(10, 16)
    kinds, weights = list(KINDS), list(KINDS.values())
    chosen = rng.choices(kinds, weights=weights, k=rng.randint(*n_faults))
    bars = sorted(rng.sample(range(1, fault_bars - 1), len(chosen)))
    faults = tuple(Fault(b, k, _params(k, rng, symbols)) for b, k in zip(bars, chosen, strict=True))
    exits, hold_partial = "", False
    if brackets:
        exits = rng.choice(EXIT_MENU)
        hold_partial = rng.random() < 0.5
        # children outlive a gateway restart (GTC, transmitted): half the restarts also start the
        # order-id sequence again, so a new order's id may be a live child's (the fake: a modify)
        faults = tuple(
            replace(f, params={**f.params, "reuse_ids": rng.random() < 0.5}) if f.kind == "gateway_restart" else f
            for f in faults
        )
    return Schedule(seed, symbols, client_id, fault_bars, faults, exits, hold_partial)
