"""EMA crossover: long while the fast exponential moving average is above the slow one."""

from research.ema_cross.spec import SPEC

__all__ = ["SPEC"]
