"""Bollinger-band reversion: buy below the lower band, exit at the middle band."""

from research.bollinger_reversion.spec import SPEC

__all__ = ["SPEC"]
