"""Parameter space of Bollinger-band reversion."""

from quantlab.strategy import Param, StrategySpec
from research.bollinger_reversion.kernel import bollinger_reversion_nb

SPEC = StrategySpec(
    name="bollinger_reversion",
    kernel=bollinger_reversion_nb,
    inputs=("close",),
    params=(
        Param("window", "int", 20, 5, 100, step=5, doc="moving-average and std window (bars)"),
        Param("width", "float", 2.0, 0.5, 3.5, step=0.25, doc="band width in standard deviations"),
    ),
    lookback="window",
    doc=(
        "Mean reversion: buy when the close falls below the lower Bollinger band\n"
        "(SMA - width x std) and sell when it closes back above the middle band. Long only."
    ),
)
