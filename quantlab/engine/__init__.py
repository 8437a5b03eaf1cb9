"""The engine: strategy contract, parameters, evaluation, simulation settings and the sweep.

Everything that turns (strategy, prices, parameters, settings) into signals and metrics, used
alike by the research wrappers (backtest, optimize, walk-forward, reports) and the live
bridge. It imports only :mod:`quantlab.kernels`, :mod:`quantlab.errors` and
:mod:`quantlab.data`; see docs/architecture.md.
"""
