"""quantlab: research framework for causal Numba strategy kernels.

Public API (imported lazily so the CLI starts fast)::

    import quantlab
    bars = quantlab.data.load("SPY")
    result = quantlab.optimize(strategy="sma_cross", symbols=["SPY"], grid="fast=5:50:5,slow=20:200:10")
"""

from __future__ import annotations

from quantlab import _env  # noqa: F401  (sets NUMBA_CACHE_DIR before numba loads)

__version__ = "0.1.0"

__all__ = ["__version__"]
