"""In-memory bars with pandas' microsecond stamps (its default for parsed dates since 2.x)
must give the same run as nanosecond stamps (the store's unit): fold and holdout cuts
compare ``index.asi8`` with ``Timestamp.value``, which is in nanoseconds."""

from __future__ import annotations

import pandas as pd

import quantlab
from quantlab.inputs import holdout_split, load_inputs


def _units(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {unit: frame.set_axis(frame.index.as_unit(unit)) for unit in ("ns", "us", "s")}


def test_in_memory_bars_of_any_unit_are_read_in_nanoseconds(daily: dict[str, pd.DataFrame]) -> None:
    for unit, frame in _units(daily["SPY"].iloc[-1000:]).items():
        inputs = load_inputs("SPY", "1d", None, None, None, {"SPY": frame})
        assert inputs.prices["SPY"].index.unit == "ns", unit
        assert holdout_split(inputs, 0.3) == {"SPY": 700}, unit


def test_walkforward_on_microsecond_bars_matches_nanosecond_bars(daily: dict[str, pd.DataFrame]) -> None:
    frames = _units(daily["SPY"].iloc[-2000:])
    runs = {
        unit: quantlab.walkforward(
            "sma_cross",
            "SPY",
            "fast=5:40:5,slow=50:150:25",
            data={"SPY": frames[unit]},
            train="2y",
            test="1y",
            save=False,
        )
        for unit in ("ns", "us")
    }
    assert runs["us"].summary["n_folds"] == runs["ns"].summary["n_folds"] > 1
    pd.testing.assert_frame_equal(runs["us"].folds, runs["ns"].folds)
