"""Grid and parameter parsing: every malformed input gets a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from quantlab.engine.params import parse_grid, parse_params
from quantlab.engine.registry import get_strategy
from quantlab.errors import ParameterError, StrategyError
from quantlab.optimizer.filters import check_metric, constraint_mask


def test_grid_expands_ranges_lists_and_constraints() -> None:
    spec = get_strategy("sma_cross")
    grid = parse_grid(spec, "fast=5:20:5,slow=10|20|40")
    assert set(map(tuple, grid.values.tolist())) == {(f, s) for f in (5, 10, 15, 20) for s in (10, 20, 40) if f < s}
    assert grid.dropped_by_constraints == 12 - len(grid)


def test_float_grid_and_fixed_params() -> None:
    spec = get_strategy("donchian_atr")
    grid = parse_grid(spec, "atr_mult=1:3:0.5", fixed={"entry": 20})
    np.testing.assert_allclose(grid.values[:, 2], [1, 1.5, 2, 2.5, 3])
    assert (grid.values[:, 0] == 20).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "malformed --grid item"),
        ("fsat=5:10", "did you mean fast"),
        ("fast=a:10", "not a number"),
        ("fast=10:5", "runs backwards"),
        ("fast=5:10:0", "step .* must be positive"),
        ("fast=1:10", "outside its valid range"),
        ("fast=5.5", "integer"),
        ("fast=100:150,slow=10:50", "empty after applying"),
        ("fast=5:10,fast=6", "appears twice"),
    ],
)
def test_malformed_grids(text: str, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        parse_grid(get_strategy("sma_cross"), text)


def test_params_parsing_and_constraints() -> None:
    spec = get_strategy("sma_cross")
    assert parse_params(spec, "fast=10,slow=30") == {"fast": 10.0, "slow": 30.0}
    with pytest.raises(ParameterError, match="violate the constraint 'fast < slow'"):
        parse_params(spec, "fast=30,slow=10")
    with pytest.raises(ParameterError, match="did you mean slow"):
        parse_params(spec, "sloww=10")


def test_unknown_strategy_suggests_names() -> None:
    with pytest.raises(StrategyError, match="did you mean sma_cross"):
        get_strategy("sma_crss")


def test_metric_names_and_constraints() -> None:
    with pytest.raises(ParameterError, match="did you mean sharpe"):
        check_metric("sharp")
    import pandas as pd

    frame = pd.DataFrame({"max_drawdown": [-0.1, -0.3, np.nan], "sharpe": [1.0, 2.0, 3.0]})
    assert constraint_mask(frame, ["max_drawdown > -0.25"]).tolist() == [True, False, False]
    assert constraint_mask(frame, ["max_drawdown > -0.25 or sharpe > 1.5"]).tolist() == [True, True, True]
    assert constraint_mask(frame, ["max_drawdown > -0.5 and sharpe < 1.5"]).tolist() == [True, False, False]
    with pytest.raises(ParameterError, match="unknown name 'drawdown'"):
        constraint_mask(frame, ["drawdown > 1"])
    with pytest.raises(ParameterError, match="could not parse"):
        constraint_mask(frame, ["sharpe >"])
    with pytest.raises(ParameterError, match="unsupported"):
        constraint_mask(frame, ["__import__('os')"])


def test_constraint_must_compare_and_messages_end_cleanly() -> None:
    from quantlab.optimizer.filters import parse_constraints

    with pytest.raises(ParameterError, match="must compare a metric"):
        parse_constraints(["sharpe"])
    parse_constraints(["sharpe > 0 and not max_drawdown < -0.5"])
    with pytest.raises(StrategyError) as info:
        get_strategy("sma_crss")
    assert "?." not in str(info.value)


@pytest.mark.parametrize("given", ["fast=-2,slow=5", "fast=0", "slow=100000", "fast=201"])
def test_params_outside_declared_bounds_are_refused(given: str) -> None:
    """Issue 9 #5 / issue 10: --params may not leave the spec's declared range (sma_cross fast 2..200)."""
    spec = get_strategy("sma_cross")
    with pytest.raises(ParameterError, match=r"outside its declared range \[\d+, \d+\]"):
        parse_params(spec, given)


@pytest.mark.parametrize("given", [{"fast": -2, "slow": 5}, {"fast": 0}, {"slow": 100000}, {"fast": 2.5}])
def test_mapping_params_are_validated_like_strings(given: dict[str, float]) -> None:
    spec = get_strategy("sma_cross")
    with pytest.raises(ParameterError):
        spec.resolve(given)
