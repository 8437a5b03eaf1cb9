"""bridge: the thin live bridge from research kernels to Interactive Brokers.

Paper trading is the default; live trading needs ``--live`` and an explicit account
confirmation. Every order passes the risk gate; the SQLite ledger is the source of truth.
"""

from __future__ import annotations

from quantlab._startup import env as _env  # noqa: F401  (numba cache before any kernel import)

__version__ = "0.1.0"
