"""Strategies: one causal Numba kernel plus its parameter space per module.

Drop a module (or package) into this folder that defines ``SPEC``; quantlab finds it.
"""

from __future__ import annotations

from quantlab._startup import env as _env  # noqa: F401  (numba cache before any kernel import)
