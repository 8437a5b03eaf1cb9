"""Stops of a position that is added to (issue 12 item 6): research measures ``sl_stop`` /
``tp_stop`` from the position's first entry (an add keeps it), so the bracket of an add takes
its levels from the opening fill, not the add's; the replay equals the simulator."""

from __future__ import annotations

import pandas as pd
import pytest

from bridge.config import load_config
from bridge.ledger.store import Ledger
from bridge.replay import run_replay


def resizing_replay(tmp_path, exits: str):  # noqa: ANN001, ANN201
    from quantlab import data

    frame = data.load("SPY", interval="1d")[["open", "high", "low", "close", "volume"]]
    frame = frame.loc[frame.index >= pd.Timestamp("2019-01-01", tz="UTC")].iloc[:700]
    cfg = load_config(
        env={},
        overrides={
            "": {"mode": "replay"},
            "strategy": {
                "name": "tsmom_vol",
                "symbols": ("SPY",),
                "params": f"lookback=60,vol_window=20,band=0.05,{exits}",
            },
            "costs": {"slippage_bps": 5.0},
            "ledger": {"path": str(tmp_path / "r.sqlite")},
            "risk": {"approval_threshold": 0.0},
        },
    )
    return run_replay(cfg, data={"SPY": frame}, check=True)


def add_levels(ledger: Ledger) -> list[tuple[float, float]]:
    """(add's stop, the position's first entry's stop) for every add, walking the fills in order."""
    stops = {
        str(r["parent_ref"]): float(r["aux_price"])
        for r in ledger.rows("SELECT parent_ref, aux_price FROM orders WHERE role = 'stop' AND order_ref LIKE '%:sl'")
    }
    position, opener, out = 0.0, "", []
    for f in ledger.rows("SELECT f.order_ref, f.side, f.quantity FROM fills f ORDER BY f.rowid"):
        signed = float(f["quantity"]) if f["side"] == "BUY" else -float(f["quantity"])
        new = position + signed
        if position == 0.0 or (new > 0) != (position > 0):
            opener = str(f["order_ref"])
        elif (signed > 0) == (position > 0) and f["order_ref"] in stops and f["order_ref"] != opener:
            out.append((stops[str(f["order_ref"])], stops[opener]))
        position = 0.0 if abs(new) < 1e-9 else new
    return out


@pytest.mark.parametrize("exits", ["sl_stop=0.03,tp_stop=0.06", "sl_stop=0.02"])
def test_an_add_keeps_the_first_entry_levels_like_research(tmp_path, exits: str) -> None:  # noqa: ANN001
    """Before the fix an add's children were relevelled to the add's fill: the replay's stops
    and targets fired at other bars than the simulator's (39 orders against 40 here)."""
    result = resizing_replay(tmp_path, exits)
    assert result.parity is not None and result.parity["equal"], result.parity
    adds = add_levels(Ledger(tmp_path / "r.sqlite"))
    assert len(adds) >= 5  # the strategy does add to open positions (not vacuous)
    assert all(ours == first for ours, first in adds), adds


@pytest.mark.xfail(
    strict=True,
    reason="known difference (docs/bridge.md 14b): research keeps the trailing mark across an add, "
    "the add's :tr child starts its mark at the add's fill",
)
def test_an_add_keeps_the_trailing_mark_like_research(tmp_path) -> None:  # noqa: ANN001
    result = resizing_replay(tmp_path, "sl_trail=0.03")
    assert result.parity is not None and result.parity["equal"], result.parity
