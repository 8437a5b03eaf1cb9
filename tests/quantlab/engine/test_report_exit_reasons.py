"""A backtest's report page shows how its round trips ended (issue 12: trades.csv has an
``Exit Reason`` column, and the page showed none of it)."""

from __future__ import annotations

import pandas as pd

from quantlab.reports.builder import exit_reasons_section


def test_exit_reasons_table_counts_each_reason() -> None:
    trades = pd.DataFrame(
        {
            "PnL": [-50.0, 120.0, -40.0, 10.0],
            "Return": [-0.05, 0.12, -0.04, 0.01],
            "Status": ["Closed"] * 4,
            "Exit Reason": ["stop", "target", "stop", "signal"],
        }
    )
    section = exit_reasons_section(trades)
    assert section is not None
    assert "stop" in section.html and "target" in section.html and "signal" in section.html
    assert ">2<" in section.html  # two stops


def test_no_section_without_exit_reasons() -> None:
    assert exit_reasons_section(pd.DataFrame({"PnL": [1.0], "Return": [0.1]})) is None
    assert exit_reasons_section(None) is None
