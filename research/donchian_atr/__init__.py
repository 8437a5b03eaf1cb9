"""Donchian breakout with an ATR trailing stop."""

from research.donchian_atr.spec import SPEC

__all__ = ["SPEC"]
