"""Hand-computed exit-rule cases (tests/reference/exit_cases.py) against the vectorbt
reference replay: every fill (bar, price, quantity) and the final equity as worked out by
hand from the semantics, to 1e-9."""

from __future__ import annotations

import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.signals import price_arrays
from quantlab.replay_exit_rules import ExitRules, ExtraCosts
from quantlab.replay_exits import replay_exits
from tests.reference.exit_cases import CASES, Case

DAILY = get_interval("1d")


def reference(case: Case):  # type: ignore[no-untyped-def]
    prices = price_arrays(case.frame(), "X")
    return replay_exits(case.target_array(), prices, case.sim(), DAILY, ExitRules(**case.rules), ExtraCosts(**case.costs))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_reference_replay_matches_hand_computed_fills(case: Case) -> None:
    out = reference(case)
    fills = out.fills()
    assert [f[0] for f in fills] == [f[0] for f in case.fills], f"{case.name}: fill bars {fills}"
    for got, want in zip(fills, case.fills, strict=True):
        assert got[1] == pytest.approx(want[1], rel=1e-9), f"{case.name}: price {got} vs {want}"
        assert got[2] == pytest.approx(want[2], rel=1e-12), f"{case.name}: quantity {got} vs {want}"
    assert float(out.value.iloc[-1]) == pytest.approx(case.equity, rel=1e-9, abs=1e-9), case.name


def test_rule_exits_are_labelled() -> None:
    """The reference says which rule closed each position (what the write-ups cite)."""
    by_name = {c.name: c for c in CASES}
    assert reference(by_name["gap_through_stop"]).exits == [(2, "stop-gap")]
    assert reference(by_name["stop_and_target_one_bar"]).exits == [(2, "stop")]
    assert reference(by_name["target_gap"]).exits == [(2, "target-gap")]
    assert reference(by_name["max_hold"]).exits == [(3, "max_hold")]
