"""What an optimisation returns: :class:`OptimizeResult`, in its own module so the code
that writes it (:mod:`quantlab.optimizer.outputs`) and the code that makes it
(:mod:`quantlab.optimizer.api`) both depend on it rather than on each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

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
            ``holdout_*`` metrics when a holdout was kept, and ``status``.
        ranking: one row per combination (mean metrics over symbols), best first.
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
    results: pd.DataFrame
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

    @property
    def returns_basis(self) -> str:
        """``"price"`` or ``"total"``: see :mod:`quantlab.data.basis`."""
        return self.inputs.returns_basis

    def portfolio(self, params: Mapping[str, float] | None = None, symbol: str | None = None, window: str = "full") -> Any:
        """vectorbt Portfolio of ``params`` (default: the winner) on ``symbol`` (default: the first).

        ``window`` is ``"full"`` (all bars), ``"in_sample"`` or ``"holdout"``.
        """
        symbol = symbol or self.inputs.symbols[0]
        if symbol not in self.inputs.prices:
            raise ParameterError(f"symbol {symbol!r} is not part of this run", found=self.inputs.symbols)
        resolved = self.spec.resolve(params if params is not None else self.best)
        prices = self.inputs.prices[symbol]
        start, end = _window_bounds(self.windows[symbol], len(prices), window)
        target = evaluate_arrays(self.spec, prices.slice(end), resolved)
        record = simulate(target, prices, self.sim, self.inputs.interval, start, end)
        return portfolio(record, prices, self.sim, self.inputs.interval, start)


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
