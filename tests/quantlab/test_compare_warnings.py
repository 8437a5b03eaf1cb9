"""`quantlab compare` says when the runs it ranks are not like for like."""

from __future__ import annotations

import pandas as pd

from quantlab.reports.compare import comparability_warnings


def test_different_intervals_and_periods_are_flagged() -> None:
    table = pd.DataFrame(
        {
            "interval": ["1d", "15m"],
            "first": ["2000-01-03", "2019-01-04"],
            "last": ["2022-11-18", "2019-02-15"],
        }
    )
    warnings = comparability_warnings(table)
    assert any("different bar intervals (15m, 1d)" in w for w in warnings)
    assert any("different periods" in w for w in warnings)


def test_like_for_like_runs_have_no_warning() -> None:
    table = pd.DataFrame({"interval": ["1d", "1d"], "first": ["2000-01-03"] * 2, "last": ["2022-11-18"] * 2})
    assert comparability_warnings(table) == []
