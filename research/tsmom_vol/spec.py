"""Parameter space of time-series momentum with volatility targeting."""

from __future__ import annotations

from quantlab.engine.strategy import Param, StrategySpec
from research.tsmom_vol.kernel import tsmom_vol_nb

SPEC = StrategySpec(
    name="tsmom_vol",
    kernel=tsmom_vol_nb,
    inputs=("close",),
    params=(
        Param("lookback", "int", 126, 20, 260, step=10, doc="momentum lookback (bars)"),
        Param("vol_window", "int", 40, 10, 120, step=10, doc="realised-volatility window (bars)"),
        Param("vol_target", "float", 0.15, 0.05, 0.40, step=0.05, doc="annualised volatility target"),
        Param("band", "float", 0.25, 0.0, 1.0, step=0.05, doc="relative change needed to rebalance"),
        Param("max_leverage", "float", 1.0, 0.1, 1.0, step=0.1, doc="exposure cap (1 = no margin)"),
        Param(
            "bars_per_year", "float", 252.0, 1.0, 200_000.0, doc="annualisation: 252 daily, 1638 hourly, 98280 1-minute"
        ),
    ),
    lookback="max(lookback, vol_window + 1)",
    doc=(
        "Time-series momentum (Moskowitz, Ooi, Pedersen 2012), long/flat: hold while the\n"
        "`lookback` return is positive, sized to `vol_target` / realised volatility (annualised\n"
        "with `bars_per_year`, capped at `max_leverage`); rebalance when the size drifts past `band`."
    ),
)
