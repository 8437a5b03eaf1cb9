"""What an optimisation returns: :class:`OptimizeResult`, in its own module so the code
that writes it (:mod:`quantlab.optimizer.outputs`) and the code that makes it
(:mod:`quantlab.optimizer.api`) both depend on it rather than on each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from quantlab.engine.exits import exit_vector
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import evaluate_arrays
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError
from quantlab.inputs import MarketInputs
from quantlab.optimizer.evaluate import Window
from quantlab.replay import SimRecord, portfolio, simulate


@dataclass
class OptimizeResult:
    """What an optimisation found.

    Attributes:
        run_id: folder name under ``reports/`` (None when not saved).
        path: the run folder.
        results: one row per (symbol, combination): parameters, in-sample metrics,
            ``holdout_*`` metrics when a holdout was kept, and ``status``; None when the
            rows were streamed to ``results.parquet`` (large sweeps, ``stream``).
        ranking: one row per combination (mean metrics over symbols), best first;
            streamed: the top passing rows only.
        top: the first ``top`` passing rows of ``ranking`` with vectorbt's replayed metrics.
        best: parameters of the winner.
        holdout: the winner in-sample vs held out, per symbol.
        overfit: deflated Sharpe ratio and PBO per symbol.
        summary: everything in ``summary.json``.
    """

    spec: StrategySpec
    inputs: MarketInputs
    sim: SimConfig
    metric: str
    windows: dict[str, Window]
    results: pd.DataFrame | None
    ranking: pd.DataFrame
    top: pd.DataFrame
    best: dict[str, float]
    holdout: pd.DataFrame | None
    overfit: dict[str, Any]
    summary: dict[str, Any]
    run_id: str | None = None
    path: Any = None
    report: Any = None
    records: dict[str, SimRecord] = field(default_factory=dict, repr=False)
    results_file: Any = field(default=None, repr=False)  # streamed: results.parquet before it moves into the run folder

    @property
    def returns_basis(self) -> str:
        """``"price"`` or ``"total"``: see :mod:`quantlab.data.basis`."""
        return self.inputs.returns_basis

    def portfolio(
        self, params: Mapping[str, float] | None = None, symbol: str | None = None, window: str = "full"
    ) -> Any:
        """vectorbt Portfolio of ``params`` (default: the winner) on ``symbol`` (default: the first).

        ``window`` is ``"full"`` (all bars), ``"in_sample"`` or ``"holdout"``.
        """
        symbol = symbol or self.inputs.symbols[0]
        record = self.record(params, symbol, window)
        start, _ = _window_bounds(self.windows[symbol], len(self.inputs.prices[symbol]), window)
        return portfolio(record, self.inputs.prices[symbol], self.sim, self.inputs.interval, start)

    def record(self, params: Mapping[str, float] | None, symbol: str, window: str = "full") -> SimRecord:
        """The simulator's orders (with their exit reasons) and values for ``params`` on ``symbol``."""
        if symbol not in self.inputs.prices:
            raise ParameterError(f"symbol {symbol!r} is not part of this run", found=self.inputs.symbols)
        resolved = self.spec.resolve(params if params is not None else self.best)
        prices = self.inputs.prices[symbol]
        start, end = _window_bounds(self.windows[symbol], len(prices), window)
        target = evaluate_arrays(self.spec, prices.slice(end), resolved)
        return simulate(
            target, prices, self.sim, self.inputs.interval, start, end, exits=exit_vector(self.spec, resolved)
        )


def _window_bounds(is_window: Window, n: int, window: str) -> tuple[int, int]:
    if window == "full":
        return 0, n
    if window == "in_sample":
        return is_window.start, is_window.end
    if window == "holdout":
        if is_window.end >= n:
            raise ParameterError("this run kept no holdout", fix="rerun with --holdout 0.3")
        return is_window.end, n
    raise ParameterError("unknown window", found=repr(window), fix="use full, in_sample or holdout")
