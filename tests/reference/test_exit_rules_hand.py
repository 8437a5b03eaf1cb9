"""Hand-computed exit-rule cases (tests/reference/exit_cases.py) against the vectorbt
reference replay and against quantlab's simulator: every fill (bar, price, quantity) and
the final equity as worked out by hand from the semantics, to 1e-9. A case the simulator
is known to get wrong is xfail(strict=True) with the reason (tests/reference/README.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.signals import price_arrays
from quantlab.replay_exit_rules import ExitRules, ExtraCosts
from quantlab.replay_exits import replay_exits
from tests.reference.exit_cases import CASES, Case

DAILY = get_interval("1d")


def reference(case: Case):  # type: ignore[no-untyped-def]
    prices = price_arrays(case.frame(), "X")
    return replay_exits(
        case.target_array(), prices, case.sim(), DAILY, ExitRules(**case.rules), ExtraCosts(**case.costs)
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_replay_matches_hand_computed_fills(case: Case) -> None:
    out = reference(case)
    _check(case, out.fills(), float(out.value.iloc[-1]))


def _check(case: Case, fills: list[tuple[int, float, float]], equity: float) -> None:
    assert [f[0] for f in fills] == [f[0] for f in case.fills], f"{case.name}: fill bars {fills}"
    for got, want in zip(fills, case.fills, strict=True):
        assert got[1] == pytest.approx(want[1], rel=1e-9), f"{case.name}: price {got} vs {want}"
        assert got[2] == pytest.approx(want[2], rel=1e-12), f"{case.name}: quantity {got} vs {want}"
    assert equity == pytest.approx(case.equity, rel=1e-9, abs=1e-9), case.name


def _kernel_fills(case: Case) -> tuple[list[tuple[int, float, float]], float]:
    """The same case through quantlab's simulator (a single backtest with the rules)."""
    try:
        from quantlab.engine import exits  # type: ignore[attr-defined]
    except ImportError:
        exits = pytest.importorskip("quantlab.exits", reason="EXITS-KERNEL not merged yet")
    from quantlab.kernels import layout
    from quantlab.replay import simulate

    ex = exits.no_exits()
    for name, value in case.rules.items():
        ex[exits.exit_slot(name)] = value
    sim = case.sim()
    sim = dataclasses.replace(sim, costs=dataclasses.replace(sim.costs, **case.costs))
    rec = simulate(case.target_array(), price_arrays(case.frame(), "X"), sim, DAILY, exits=ex)
    conc = sim.costs.concession("X")
    orders = np.asarray(rec.orders)
    fills = [
        (
            int(o[layout.O_BAR]),
            float(o[layout.O_PRICE] * (1 + conc if o[layout.O_SIZE] > 0 else 1 - conc)),
            float(o[layout.O_SIZE]),
        )
        for o in orders
    ]
    return fills, float(rec.value[-1])


KERNEL_CASES = [
    pytest.param(
        c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.kernel_differs)] if c.kernel_differs else []
    )
    for c in CASES
]


@pytest.mark.parametrize("case", KERNEL_CASES)
def test_kernel_matches_hand_computed_fills(case: Case) -> None:
    fills, equity = _kernel_fills(case)
    _check(case, fills, equity)


def test_rule_exits_are_labelled() -> None:
    """The reference says which rule closed each position (what the write-ups cite)."""
    by_name = {c.name: c for c in CASES}
    assert reference(by_name["gap_through_stop"]).exits == [(2, "stop-gap")]
    assert reference(by_name["stop_and_target_one_bar"]).exits == [(2, "stop")]
    assert reference(by_name["target_gap"]).exits == [(2, "target-gap")]
    assert reference(by_name["max_hold"]).exits == [(3, "max_hold")]
