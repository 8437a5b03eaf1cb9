"""Brackets in the runner on the sim broker (issue 12 item 5): an entry with sl_stop / tp_stop /
sl_trail carries its children (recorded with the parent by Ledger.insert_bracket, refs
<entry>:sl|:tp|:tr, one OCA group), they move to levels from the raw entry fill, the strategy's
exit cancels them first; the replay's fills equal the engine simulator's with the same rules."""

from __future__ import annotations

import pandas as pd
import pytest

from bridge.config import load_config
from bridge.errors import BridgeError
from bridge.ledger.store import Ledger
from bridge.replay import run_replay


def replay(spy_daily: pd.DataFrame, tmp_path, params: str, **over: dict) -> object:  # noqa: ANN001
    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": f"fast=10,slow=30,{params}"},
            "costs": {"slippage_bps": 5.0},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
            **over,
        },
    )
    return run_replay(cfg, data={"SPY": spy_daily.iloc[:400]}, check=True)


@pytest.mark.parametrize(
    "exits", ["sl_stop=0.02,tp_stop=0.05", "sl_trail=0.03", "sl_stop=0.03,tp_stop=0.04,sl_trail=0.02"]
)
def test_replay_with_brackets_equals_the_simulator_with_the_same_exit_rules(
    spy_daily: pd.DataFrame, tmp_path, exits: str
) -> None:  # noqa: ANN001
    """Same bars, same quantities, prices within one tick; protective exits do happen (not vacuous)."""
    result = replay(spy_daily, tmp_path, exits)
    assert result.parity is not None and result.parity["equal"], result.parity
    filled = result.orders[result.orders["status"] == "filled"]
    protective = filled[filled["role"].notna()]
    assert len(protective) >= 2 and result.parity["orders"] == len(filled) >= 6


def test_children_are_recorded_with_the_entry_and_end_closed(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    result = replay(spy_daily, tmp_path, "sl_stop=0.02,tp_stop=0.05")
    ledger = Ledger(tmp_path / "r.sqlite")
    entries = result.orders[(result.orders["role"].isna()) & (result.orders["status"] == "filled")]
    first = str(entries.iloc[0]["order_ref"])
    kids = ledger.children(first)
    assert [(k["order_ref"], k["role"], k["oca_group"], k["tif"]) for k in kids] == [
        (f"{first}:sl", "stop", f"{first}:oca", "GTC"),
        (f"{first}:tp", "take_profit", f"{first}:oca", "GTC"),
    ]
    fill = float(entries.iloc[0]["avg_fill_price"]) / 1.0005  # the raw fill (5 bps slippage on a buy)
    assert kids[0]["aux_price"] == pytest.approx(fill * 0.98, abs=0.01)  # relevelled from the fill, not the close
    open_children = [r for r in ledger.open_orders() if r["role"]]
    assert len(open_children) == (2 if result.positions.get("SPY") else 0)  # none rests on a flat symbol


def test_exit_rules_run_on_paper_and_timed_rules_run_everywhere() -> None:
    """Issue 12: the IB broker places brackets now, so paper/live accept sl_stop/tp_stop/sl_trail;
    max_hold and limit entries are the runner's own orders, accepted in every mode (this test
    used to expect max_hold refused everywhere: the issue wires it)."""
    from bridge.app import validate_run

    cfg = load_config(
        env={}, overrides={"strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": "sl_stop=0.05,tp_stop=0.1"}}
    )
    assert cfg.mode == "paper"
    spec, params = validate_run(cfg)
    assert {p.name for p in spec.exit_params} == {"sl_stop", "tp_stop"} and params["sl_stop"] == 0.05
    for mode in ("paper", "replay"):
        for timed in ("max_hold=5", "entry_limit=0.01,limit_expiry=3,limit_ticks=1"):
            cfg = load_config(
                env={},
                overrides={"": {"mode": mode}, "strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": timed}},
            )
            _, resolved = validate_run(cfg)
            assert all(resolved[k] == float(v) for k, v in (kv.split("=") for kv in timed.split(",")))


def test_require_stop_needs_a_stop_rule_in_every_mode(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    from bridge.app import validate_run

    cfg = load_config(
        env={},
        overrides={
            "risk": {"require_stop": True, "max_loss_per_trade": 500.0},
            "strategy": {"name": "sma_cross", "symbols": ("SPY",), "params": "tp_stop=0.05"},
        },
    )
    assert cfg.mode == "paper" and cfg.risk.require_stop  # accepted at load: the IB broker places stops now
    with pytest.raises(BridgeError, match="no sl_stop or sl_trail"):
        validate_run(cfg)
    result = replay(spy_daily, tmp_path, "sl_stop=0.02", risk={"require_stop": True, "max_loss_per_trade": 5000.0})
    filled = result.orders[(result.orders["status"] == "filled") & result.orders["role"].isna()]
    assert len(filled) >= 3  # entries carry their stop: the gate's rule 9 lets them through
    with pytest.raises(BridgeError, match="no sl_stop or sl_trail"):
        replay(spy_daily, tmp_path / "b", "tp_stop=0.05", risk={"require_stop": True})


def test_the_replay_refuses_exits_on_a_strategy_that_shorts_without_allow_short(
    spy_daily: pd.DataFrame, tmp_path
) -> None:  # noqa: ANN001
    from quantlab.engine.registry import get_strategy

    spec = get_strategy("tests/bridge/short_strategy.py")
    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
            "strategy": {"name": "short_flip", "symbols": ("SPY",), "params": "sl_stop=0.02"},
        },
    )
    with pytest.raises(BridgeError, match="goes short, but shorting is off") as refused:
        run_replay(cfg, data={"SPY": spy_daily.iloc[:60]}, spec=spec)
    assert not (tmp_path / "r.sqlite").exists()  # refused before the ledger opened: nothing sent
    # the fix names the bridge's own setting, not the Python class a bridge user never sees
    assert "allow_short = true under [sizing]" in refused.value.render()


@pytest.mark.parametrize("exits", ["sl_stop=0.01,tp_stop=0.01", "sl_trail=0.01"])
def test_short_brackets_equal_the_simulator(spy_daily: pd.DataFrame, tmp_path, exits: str) -> None:  # noqa: ANN001
    """A shorting strategy with allow_short: BUY children above/below a short entry, same fills as research."""
    from quantlab.engine.registry import get_strategy

    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "sizing": {"allow_short": True},
            "costs": {"slippage_bps": 5.0},
            "strategy": {"name": "short_flip", "symbols": ("SPY",), "params": exits},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
        },
    )
    result = run_replay(
        cfg, data={"SPY": spy_daily.iloc[:200]}, spec=get_strategy("tests/bridge/short_strategy.py"), check=True
    )
    assert result.parity is not None and result.parity["equal"], result.parity
    protective = result.orders[(result.orders["status"] == "filled") & result.orders["role"].notna()]
    assert len(protective) >= 5 and set(protective["side"]) == {"BUY"}


def test_exit_rules_with_limit_orders_are_refused(spy_daily: pd.DataFrame, tmp_path) -> None:  # noqa: ANN001
    """A timed-out limit entry is replaced by a market order without children: refused rather than run unprotected."""
    with pytest.raises(BridgeError, match="carries no protective orders yet"):
        replay(spy_daily, tmp_path, "sl_stop=0.02", orders={"type": "limit"})
