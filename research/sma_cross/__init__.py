"""SMA crossover: long while the fast simple moving average is above the slow one."""

from research.sma_cross.spec import SPEC

__all__ = ["SPEC"]
