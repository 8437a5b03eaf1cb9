"""The reconcile's plan for protective orders (issue 12 item 5): adopt what the broker holds,
never duplicate or void it, cancel what protects a flat symbol, re-attach what is missing."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.protect_plan import Entry, HeldChild, plan

RULES = {"sl_stop": 0.05, "tp_stop": 0.10}
E = "ql:s:SPY:20240102T143000Z:aa"
ENTRIES = {"SPY": Entry(E, "BUY", 100.0)}


def kinds(actions: list) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(a.kind, a.ref) for a in actions]


def test_a_fully_protected_position_is_adopted_and_nothing_is_sent() -> None:
    held = [HeldChild(f"{E}:sl", "SPY", "SELL", 10), HeldChild(f"{E}:tp", "SPY", "SELL", 10)]
    assert kinds(plan(RULES, {"SPY": 10}, ENTRIES, {f"{E}:sl": "SPY", f"{E}:tp": "SPY"}, held)) == [
        ("adopt", f"{E}:sl"),
        ("adopt", f"{E}:tp"),
    ]


def test_children_unknown_to_the_ledger_are_adopted_not_duplicated() -> None:
    held = [HeldChild(f"{E}:sl", "SPY", "SELL", 10), HeldChild(f"{E}:tp", "SPY", "SELL", 10)]
    acts = plan(RULES, {"SPY": 10}, ENTRIES, {}, held)
    assert kinds(acts) == [("adopt", f"{E}:sl"), ("adopt", f"{E}:tp")] and "unknown to the ledger" in acts[0].detail


def test_a_missing_stop_is_reattached_under_a_new_ref_with_levels_from_the_fill() -> None:
    held = [HeldChild(f"{E}:tp", "SPY", "SELL", 10)]
    acts = plan(
        RULES, {"SPY": 10}, ENTRIES, {f"{E}:sl": "SPY", f"{E}:tp": "SPY"}, held, known_refs=[f"{E}:sl", f"{E}:tp"]
    )
    assert (
        kinds(acts) == [("gone", f"{E}:sl"), ("adopt", f"{E}:tp"), ("attach", f"{E}:sl~1")] and acts[0].symbol == "SPY"
    )
    assert "STP at 95" in acts[-1].detail and acts[-1].quantity == 10


def test_a_child_left_on_a_flat_symbol_is_cancelled_first() -> None:
    held = [HeldChild(f"{E}:sl", "SPY", "SELL", 10)]
    acts = plan(RULES, {"SPY": 0}, ENTRIES, {f"{E}:sl": "SPY"}, held)
    assert kinds(acts) == [("cancel", f"{E}:sl")] and "would open one" in acts[0].detail


def test_a_partial_exit_resizes_the_children() -> None:
    held = [HeldChild(f"{E}:sl", "SPY", "SELL", 10), HeldChild(f"{E}:tp", "SPY", "SELL", 10)]
    acts = plan(RULES, {"SPY": 6}, ENTRIES, {f"{E}:sl": "SPY", f"{E}:tp": "SPY"}, held)
    assert [(a.kind, a.ref, a.quantity) for a in acts if a.kind == "resize"] == [
        ("resize", f"{E}:sl", 6),
        ("resize", f"{E}:tp", 6),
    ]


kinds_st = st.sets(st.sampled_from(["sl", "tp"]))


@settings(max_examples=300, deadline=None)
@given(st.integers(-20, 20), kinds_st, kinds_st, st.integers(1, 20))
def test_plan_invariants(pos: int, at_broker: set[str], in_ledger: set[str], held_qty: int) -> None:
    """Whatever the state: a held child is never voided or re-sent; after the plan a position
    has every kind its rules ask for; nothing keeps resting on a flat symbol."""
    entries = {"SPY": Entry(E, "BUY" if pos >= 0 else "SELL", 100.0)}
    side = "SELL" if pos >= 0 else "BUY"
    held = [HeldChild(f"{E}:{k}", "SPY", side, held_qty) for k in sorted(at_broker)]
    acts = plan(RULES, {"SPY": pos}, entries, {f"{E}:{k}": "SPY" for k in sorted(in_ledger)}, held)
    held_refs = {h.ref for h in held}
    assert not [a for a in acts if a.kind in ("gone", "attach") and a.ref in held_refs]
    if pos == 0:
        assert {a.ref for a in acts if a.kind == "cancel"} == held_refs and not [a for a in acts if a.kind == "attach"]
    else:
        final = {a.ref.rpartition(":")[2].split("~")[0] for a in acts if a.kind in ("adopt", "attach")}
        assert final == {"sl", "tp"}
        assert len({a.ref for a in acts if a.kind == "attach"}) == len([a for a in acts if a.kind == "attach"])
    assert plan(RULES, {"SPY": pos}, entries, {f"{E}:{k}": "SPY" for k in sorted(in_ledger)}, held) == acts


def test_a_reattached_childs_ref_keeps_its_parent_and_role() -> None:
    from bridge.protection import split_ref

    assert (
        split_ref(f"{E}:sl~2") == (E, "stop")
        and split_ref(f"{E}:tr") == (E, "trail")
        and split_ref(f"{E}:xx~1") is None
    )
