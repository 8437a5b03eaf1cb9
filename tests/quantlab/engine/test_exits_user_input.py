"""Bad exit-rule input given through ``--params`` / ``params=`` as a new user types it
(found by trying issue 12's features from the docs)."""

from __future__ import annotations

import pytest

from quantlab.engine.exits import apply_exits
from quantlab.engine.registry import get_strategy
from quantlab.errors import QuantlabError


def test_typo_of_an_exit_rule_in_params_suggests_the_rule() -> None:
    spec = get_strategy("sma_cross")
    with pytest.raises(QuantlabError) as err:
        apply_exits(spec, None, "fast=20,slow=50,sl_stpo=0.02")
    text = str(err.value)
    assert "sl_stpo" in text
    assert "did you mean sl_stop" in text


def test_non_numeric_exit_value_names_what_was_typed_not_nan() -> None:
    spec = get_strategy("sma_cross")
    with pytest.raises(QuantlabError) as err:
        apply_exits(spec, None, "fast=20,slow=50,sl_stop=abc")
    text = str(err.value)
    assert "abc" in text
    assert "nan" not in text


def test_float_range_without_step_suggests_a_step_inside_the_range() -> None:
    from quantlab.engine.exits import parse_exits
    from quantlab.engine.params import parse_grid

    spec, grid = parse_exits(get_strategy("sma_cross"), "sl_stop=0.02:0.10")
    with pytest.raises(QuantlabError) as err:
        parse_grid(spec, grid, fixed={"fast": 20, "slow": 50})
    text = str(err.value)
    assert "0.02:0.10:0.5" not in text  # a step wider than the range is no example
    assert "0.02:0.10:0.008" in text


def test_non_numeric_exit_grid_value_gives_a_valid_example() -> None:
    from quantlab.engine.exits import parse_exits
    from quantlab.engine.params import parse_grid

    spec, grid = parse_exits(get_strategy("sma_cross"), "sl_stop=abc")
    with pytest.raises(QuantlabError) as err:
        parse_grid(spec, grid, fixed={"fast": 20, "slow": 50})
    assert "sl_stop=20" not in str(err.value)  # 20 is outside (0, 1)
    assert "sl_stop=0.05" in str(err.value)


@pytest.mark.parametrize("entry", ["backtest", "optimize", "walkforward"])
def test_a_spread_for_a_symbol_the_run_does_not_trade_is_refused(daily, tmp_path, entry: str) -> None:  # type: ignore[no-untyped-def]
    """--spread QQQ:3 on a SPY-only run used to apply to nothing, silently (found by a new-user tour)."""
    import quantlab
    from quantlab.engine.settings import Costs, SimConfig

    sim = SimConfig(costs=Costs(spread_bps={"QQQ": 3.0}))
    data = {"SPY": daily["SPY"]}
    calls = {
        "backtest": lambda: quantlab.backtest("sma_cross", "SPY", "fast=20,slow=50", sim=sim, data=data, save=False),
        "optimize": lambda: quantlab.optimize(
            "sma_cross", "SPY", "fast=5:20:5,slow=30:60:10", sim=sim, data=data, save=False
        ),
        "walkforward": lambda: quantlab.walkforward(
            "sma_cross", "SPY", "fast=5:20:5,slow=30:60:10", train="3y", test="1y", sim=sim, data=data, save=False
        ),
    }
    with pytest.raises(QuantlabError, match="does not trade") as info:
        calls[entry]()
    assert "QQQ" in str(info.value) and "SPY" in str(info.value)


def test_a_rule_twice_in_exits_names_exits_not_grid() -> None:
    """Regression: it said "appears twice in --grid" for a rule typed twice in --exits."""
    with pytest.raises(QuantlabError) as err:
        apply_exits(get_strategy("sma_cross"), "sl_stop=0.02,sl_stop=0.03", None)
    text = str(err.value)
    assert "'sl_stop' appears twice in --exits" in text and "--grid" not in text


def test_a_rule_in_params_and_in_exits_names_both_flags() -> None:
    """Regression: it said "given both in --params and in --grid" when the second was --exits."""
    with pytest.raises(QuantlabError) as err:
        apply_exits(get_strategy("sma_cross"), "sl_stop=0.03:0.05:0.01", "fast=20,sl_stop=0.02")
    text = str(err.value)
    assert "given both in --params and in --exits" in text and "sl_stop=0.02" in text and "--grid" not in text
