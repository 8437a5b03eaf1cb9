"""bridge: the thin live bridge from research kernels to Interactive Brokers.

Paper trading is the default; live trading needs ``--live`` and an explicit account
confirmation. Every order passes the risk gate; the SQLite ledger is the source of truth.

It uses only quantlab's engine, kernels, errors, data and paths (``tests/bridge/test_layout.py``);
numba's cache folder is set by ``quantlab``'s package init, which every such import runs first.
"""

from __future__ import annotations

__version__ = "0.1.0"
