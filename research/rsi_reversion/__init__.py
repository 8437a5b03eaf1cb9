"""RSI mean reversion: buy oversold, sell when the RSI recovers."""

from research.rsi_reversion.spec import SPEC

__all__ = ["SPEC"]
