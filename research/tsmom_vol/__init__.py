"""Time-series momentum with volatility targeting."""

from research.tsmom_vol.spec import SPEC

__all__ = ["SPEC"]
