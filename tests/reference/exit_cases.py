"""Hand-computed exit-rule cases: tiny bar sets with their fills and final equity worked out
by hand (in each case's comment) from the semantics in docs/research.md.

Shared conventions: 10,000 cash, ``cash`` sizing of 1,000 (10 shares at a signal close of
100), no commission or slippage unless the case says so. A target at bar i is traded at bar
i + 1's open. Fills are (bar, price after slippage and spread, signed shares).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.settings import Costs, SimConfig, Sizing

FLAT = (100.0, 100.0, 100.0, 100.0)


@dataclass(frozen=True)
class Case:
    name: str
    bars: list[tuple[float, float, float, float]]  # open, high, low, close
    target: list[float]
    rules: dict[str, Any]
    fills: list[tuple[int, float, float]]
    equity: float
    costs: dict[str, float] = field(default_factory=dict)
    short: bool = False
    cash: float = 10_000.0
    size: float = 1_000.0
    slippage_bps: float = 0.0
    sizing: str = "cash"
    #: why quantlab's kernel disagrees with this case (None: it must agree)
    kernel_differs: str | None = None

    def sim(self) -> SimConfig:
        costs = Costs(model="percent", pct_fee=0.0, fixed_fee=0.0, slippage_bps=self.slippage_bps)
        value = self.size if self.sizing == "cash" else 0.5
        return SimConfig(self.cash, costs, Sizing(self.sizing, value, allow_short=self.short))

    def frame(self) -> pd.DataFrame:
        idx = pd.date_range("2024-01-02", periods=len(self.bars), freq="B", tz="UTC", name="time")
        frame = pd.DataFrame(self.bars, index=idx, columns=["open", "high", "low", "close"])
        frame["volume"] = 1e6
        return frame

    def target_array(self) -> np.ndarray:
        return np.asarray(self.target, dtype=np.float64)


def _flat(n: int, bar: tuple[float, float, float, float] = FLAT) -> list[tuple[float, float, float, float]]:
    return [bar] * n


CASES = [
    # Entry 10 @ 100 at bar 1 (stop 95). Bar 2 opens at 90, through the stop: out at 90.
    # 10,000 - 1,000 + 900 = 9,900.
    Case(
        "gap_through_stop",
        [FLAT, (100, 102, 99, 101), (90, 92, 88, 91), (91, 92, 90, 92)],
        [1, 1, 1, 1],
        {"sl_stop": 0.05},
        [(1, 100, 10), (2, 90, -10)],
        9_900,
    ),
    # Stop 95 and target 105 both inside bar 2 (low 94, high 106): the stop wins at 95.
    Case(
        "stop_and_target_one_bar",
        [FLAT, (100, 101, 99, 100), (100, 106, 94, 100), FLAT],
        [1, 1, 1, 1],
        {"sl_stop": 0.05, "tp_stop": 0.05},
        [(1, 100, 10), (2, 95, -10)],
        9_950,
    ),
    # Target 105 reached intrabar (open 102 below it): out at 105. 10,000 + 50.
    Case(
        "target_at_level",
        [FLAT, (100, 101, 99, 100), (102, 106, 101, 104), FLAT],
        [1, 1, 1, 1],
        {"tp_stop": 0.05},
        [(1, 100, 10), (2, 105, -10)],
        10_050,
    ),
    # Bar 2 opens at 107, above the target 105: out at the better open.
    Case(
        "target_gap",
        [FLAT, (100, 101, 99, 100), (107, 108, 106, 107), FLAT],
        [1, 1, 1, 1],
        {"tp_stop": 0.05},
        [(1, 100, 10), (2, 107, -10)],
        10_070,
    ),
    # Entry at the open of bar 1 whose low (94) reaches the stop 95: out in the fill bar.
    Case(
        "stop_in_fill_bar",
        [FLAT, (100, 101, 94, 97), (97, 98, 96, 97)],
        [1, 1, 1],
        {"sl_stop": 0.05},
        [(1, 100, 10), (1, 95, -10)],
        9_950,
    ),
    # Trail 10%. Fill bar 1's high (120) is not used. Bar 2: level 90 (mark 100), then mark
    # 110. Bar 3: level 99, low 100 holds, mark 115. Bar 4: level 103.5, low 103: out at
    # 103.5. 10,000 + 35.
    Case(
        "trail_ratchet",
        [
            FLAT,
            (100, 120, 99, 101),
            (101, 110, 101, 109),
            (109, 115, 100, 114),
            (114, 116, 103, 104),
            (104, 105, 103, 104),
        ],
        [1, 1, 1, 1, 1, 1],
        {"sl_trail": 0.10},
        [(1, 100, 10), (4, 103.5, -10)],
        10_035,
    ),
    # Fixed stop 2% and trail 10% together: the higher level binds (98, then 99, 103.5).
    Case(
        "trail_with_fixed_stop",
        [
            FLAT,
            (100, 120, 99, 101),
            (101, 110, 98.5, 109),
            (109, 115, 100, 114),
            (114, 116, 103, 104),
            (104, 105, 103, 104),
        ],
        [1, 1, 1, 1, 1, 1],
        {"sl_stop": 0.02, "sl_trail": 0.10},
        [(1, 100, 10), (4, 103.5, -10)],
        10_035,
    ),
    # Limit 2% under the signal close 100 = 98; bar 1 opens 99, low 93: filled at 98, 10
    # shares. Stop 93.1: the limit filled intrabar, so bar 1's low 93 is not checked; bar 2
    # (low 92) stops out at 93.1. 10,000 - 980 + 931 = 9,951.
    Case(
        "limit_at_limit",
        [FLAT, (99, 100, 93, 99), (95, 96, 92, 94), (94, 95, 93, 94)],
        [1, 1, 1, 1],
        {"entry_limit": 0.02, "sl_stop": 0.05},
        [(1, 98, 10), (2, 93.1, -10)],
        9_951,
    ),
    # Limit 98, bar 1 opens at 97: filled at the better open 97. Stop 95.06 (2%) is live in
    # the fill bar because the fill was at the open: low 95 -> out at 95.06.
    # 10,000 - 970 + 950.6 = 9,980.6.
    Case(
        "limit_better_open",
        [FLAT, (97, 99, 95, 98), (98, 99, 97, 98)],
        [1, 1, 1],
        {"entry_limit": 0.02, "sl_stop": 0.02},
        [(1, 97, 10), (1, 95.06, -10)],
        9_980.6,
    ),
    # Limit 98 works for 2 bars (1 and 2; lows 99, 98.5): expired before bar 3 (low 97).
    Case(
        "limit_expiry",
        [FLAT, (100, 101, 99, 100), (100, 101, 98.5, 100), (99, 100, 97, 99), FLAT],
        [1, 1, 1, 1, 1],
        {"entry_limit": 0.02, "limit_expiry": 2},
        [],
        10_000,
    ),
    # The same with 3 bars: filled in bar 3 at 98, marked at bar 4's close 100: 10,020.
    Case(
        "limit_expiry_3",
        [FLAT, (100, 101, 99, 100), (100, 101, 98.5, 100), (99, 100, 97, 99), FLAT],
        [1, 1, 1, 1, 1],
        {"entry_limit": 0.02, "limit_expiry": 3},
        [(3, 98, 10)],
        10_020,
    ),
    # The target returns to 0 at bar 1's close: the working limit is cancelled before bar 2
    # (whose low 97 would have filled it).
    Case(
        "limit_cancelled_by_target",
        [FLAT, (100, 101, 99, 100), (99, 100, 97, 99), FLAT],
        [1, 0, 0, 0],
        {"entry_limit": 0.02, "limit_expiry": 3},
        [],
        10_000,
    ),
    # limit_ticks 5: the low must reach 98 - 0.05. Bar 1's low 97.96 does not; bar 2's 97.9
    # does: filled at min(open 99, 98) = 98; marked at 99: 10,010.
    Case(
        "limit_ticks",
        [FLAT, (99, 100, 97.96, 99), (99, 100, 97.9, 99)],
        [1, 1, 1],
        {"entry_limit": 0.02, "limit_expiry": 2, "limit_ticks": 5},
        [(2, 98, 10)],
        10_010,
    ),
    # max_hold 2: entered at bar 1's open, closed at bar 3's open (103). 10,000 + 30.
    Case(
        "max_hold",
        [FLAT, (100, 101, 99, 101), (101, 102, 100, 102), (103, 104, 102, 103), (103, 104, 102, 103)],
        [1, 1, 1, 1, 1],
        {"max_hold": 2},
        [(1, 100, 10), (3, 103, -10)],
        10_030,
    ),
    # Stopped out at 95 in bar 2. The target moves 1 -> 0.5 (still long): no re-entry. It goes
    # to 0 at bar 5's close, then 1 at bar 6's: a fresh entry at bar 7's open, 1,000 / 96 ->
    # 10 shares at 96. 10,000 - 1,000 + 950 - 960 + 960 = 9,950.
    Case(
        "fresh_entry_after_stop",
        [FLAT, (100, 101, 99, 100), (100, 100, 94, 96)] + _flat(5, (96, 97, 95, 96)),
        [1, 1, 1, 0.5, 0.5, 0, 1, 1],
        {"sl_stop": 0.05},
        [(1, 100, 10), (2, 95, -10), (7, 96, 10)],
        9_950,
    ),
    # Shorts mirror longs: short 10 @ 100 (stop 105, target 95); bar 2 opens 110: covered
    # at 110. 10,000 + 1,000 - 1,100 = 9,900.
    Case(
        "short_gap_through_stop",
        [FLAT, (100, 101, 99, 100), (110, 112, 109, 111), FLAT],
        [-1, -1, -1, -1],
        {"sl_stop": 0.05},
        [(1, 100, -10), (2, 110, 10)],
        9_900,
        short=True,
    ),
    # Short, stop 105 and target 95 in one bar: the stop wins.
    Case(
        "short_stop_and_target_one_bar",
        [FLAT, (100, 101, 99, 100), (100, 106, 94, 100), FLAT],
        [-1, -1, -1, -1],
        {"sl_stop": 0.05, "tp_stop": 0.05},
        [(1, 100, -10), (2, 105, 10)],
        9_950,
        short=True,
    ),
    # Short trail 10% from the low-water mark: fill bar 1's low 80 is not used; bar 2 level
    # 110, mark 90; bar 3 level 99, high 99.5: covered at 99. 10,000 + 10.
    Case(
        "short_trail_ratchet",
        [FLAT, (100, 101, 80, 99), (99, 99, 90, 91), (91, 99.5, 85, 86), FLAT],
        [-1, -1, -1, -1, -1],
        {"sl_trail": 0.10},
        [(1, 100, -10), (3, 99, 10)],
        10_010,
        short=True,
    ),
    # SEC fee 27.80 per million of sell notional and TAF 0.000166/share on the sell at the
    # target 110: 1,100 x 27.8e-6 = 0.03058, 10 x 0.000166 = 0.00166.
    # 10,000 - 1,000 + 1,100 - 0.03224 = 10,099.96776.
    Case(
        "sec_fee_and_taf",
        [FLAT, (100, 101, 99, 100), (105, 111, 104, 108), FLAT],
        [1, 1, 1, 1],
        {"tp_stop": 0.10},
        [(1, 100, 10), (2, 110, -10)],
        10_099.96776,
        costs={"sec_fee_rate": 27.8e-6, "taf_per_share": 0.000166, "taf_max": 8.30},
    ),
    # TAF cap: 100,000 shares at 1.00 sold at 1.10: TAF 16.60 capped at 8.30; SEC 3.058.
    # 200,000 - 100,000 + 110,000 - 11.358 = 209,988.642.
    Case(
        "taf_cap",
        _flat(1, (1, 1, 1, 1)) + [(1, 1.01, 0.99, 1), (1.05, 1.11, 1.04, 1.08), (1, 1, 1, 1)],
        [1, 1, 1, 1],
        {"tp_stop": 0.10},
        [(1, 1, 100_000), (2, 1.1, -100_000)],
        209_988.642,
        costs={"sec_fee_rate": 27.8e-6, "taf_per_share": 0.000166, "taf_max": 8.30},
        cash=200_000,
        size=100_000,
    ),
    # Half-spread 10 bps paid like slippage (5 bps) on both fills: buy 100 x 1.0015 =
    # 100.15, sell at bar 3's open 102 x 0.9985 = 101.847. 10,000 - 1,001.5 + 1,018.47.
    Case(
        "half_spread",
        [FLAT, (100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102)],
        [1, 1, 0, 0],
        {},
        [(1, 100.15, 10), (3, 101.847, -10)],
        10_016.97,
        costs={"half_spread_bps": 10.0},
        slippage_bps=5.0,
    ),
    # Borrow 10%/year on a short, charged at each close for one bar (1/252 of a year):
    # closes 100, 98, 96 -> 0.1 / 252 x 10 x 294 = 1.1666...; covered at bar 4's open 96.
    # 10,000 + 1,000 - 960 - 1.16667 = 10,038.8333...
    Case(
        "borrow",
        [FLAT, (100, 101, 99, 100), (99, 100, 97, 98), (97, 98, 95, 96), (96, 97, 95, 96)],
        [-1, -1, -1, 0, 0],
        {},
        [(1, 100, -10), (4, 96, 10)],
        10_040 - 0.1 / 252 * 10 * 294,
        costs={"borrow_rate": 0.10},
        short=True,
    ),
    # Sizing at the decision close, also after an exit in the same open (fraction 0.5):
    # short 50 @ 100 (0.5 x 10,000 / 100), stop 105. The target flips to +1 at bar 1's
    # close, when equity is 10,000: the new leg is 0.5 x 10,000 / 100 = 50 shares. Bar 2
    # opens at 110, through the stop: cover 50 @ 110 (cash 9,500), then buy 50 @ 110.
    # 9,500 - 5,500 + 50 x 110 = 9,500.
    Case(
        "reversal_after_gap_exit_sizes_at_decision_close",
        [FLAT, (100, 101, 99, 100), (110, 111, 109, 110), (110, 111, 109, 110)],
        [-1, 1, 1, 1],
        {"sl_stop": 0.05},
        [(1, 100, -50), (2, 110, 50), (2, 110, 50)],
        9_500,
        short=True,
        sizing="fraction",
    ),
]
