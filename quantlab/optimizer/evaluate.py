"""Run the sweep for every symbol over in-sample and held-out windows, into tidy tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab.engine.backends import active_backend
from quantlab.engine.settings import SimConfig
from quantlab.engine.strategy import StrategySpec
from quantlab.engine.sweep import SweepOutput, run_sweep
from quantlab.inputs import MarketInputs
from quantlab.kernels.layout import METRIC_NAMES


@dataclass(frozen=True)
class Window:
    """Bars ``[start, end)`` of one symbol."""

    start: int
    end: int


@dataclass
class Evaluation:
    """Sweep outputs of every symbol for one window kind (``in_sample`` or ``holdout``)."""

    outputs: dict[str, SweepOutput]
    windows: dict[str, Window]

    @property
    def seconds(self) -> float:
        return float(sum(o.seconds for o in self.outputs.values()))


def evaluate(
    spec: StrategySpec,
    inputs: MarketInputs,
    values: np.ndarray,
    sim: SimConfig,
    windows: dict[str, Window],
    n_blocks: int = 0,
    on_progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Sweep ``values`` (combinations x params) for each symbol over its window."""
    backend = active_backend()  # --cluster / --resume: chunked, checkpointed (docs/scaling.md)
    if backend is not None:
        return Evaluation(backend.sweep(spec, inputs, values, sim, windows, n_blocks, on_progress), windows)
    outputs: dict[str, SweepOutput] = {}
    done_before = 0
    for symbol, window in windows.items():
        prices = inputs.prices[symbol]
        # optimize checks the window against --blocks before the sweep (check_blocks_fit)
        blocks = n_blocks if window.end - window.start >= 4 * max(n_blocks, 1) else 0

        def progress(done: int, offset: int = done_before) -> None:
            if on_progress is not None:
                on_progress(offset + done)

        outputs[symbol] = run_sweep(
            spec, prices, values, sim, inputs.interval, window.start, window.end, blocks, progress
        )
        done_before += values.shape[0]
    return Evaluation(outputs, windows)


def tidy(spec: StrategySpec, values: np.ndarray, evaluation: Evaluation, prefix: str = "") -> pd.DataFrame:
    """Long table: one row per (symbol, combination) with params and metric columns."""
    frames = []
    for symbol, out in evaluation.outputs.items():
        frame = pd.DataFrame(values, columns=list(spec.param_names))
        frame.insert(0, "combo", np.arange(values.shape[0], dtype=np.int64))
        frame.insert(0, "symbol", symbol)
        metrics = pd.DataFrame(out.metrics, columns=[prefix + m for m in METRIC_NAMES])
        frames.append(pd.concat([frame, metrics], axis=1))
    return pd.concat(frames, ignore_index=True)
