"""The sweep's work unit: a chunk of (symbol, combination range) over one evaluation window.

Every backend runs the same chunks and :class:`Assembly` places their outputs in
plan order (symbol order, then combination order), whatever order they finished in.
Each combination row is computed independently by the kernel, so a chunked run gives
exactly the in-process result, bit for bit.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np

from quantlab.engine.intervals import Interval
from quantlab.engine.settings import SimConfig
from quantlab.engine.signals import PriceArrays
from quantlab.engine.strategy import StrategySpec
from quantlab.engine.sweep import SweepOutput, block_starts, run_sweep
from quantlab.kernels.layout import N_METRICS

# About two seconds of single-core work per chunk at ~1.7e8 bar-evaluations/s (one second
# of a 2-core worker): the fixed cost of a chunk (task round trip, result transfer set-up,
# one-row kernel call) stays near 1% of it, the plan still balances over a few workers,
# and a killed client loses little work. "Bars" counts the bars up to the window's end,
# which the kernel reads (docs/scaling.md: measured figures).
TARGET_EVALUATIONS_PER_CHUNK = 3.0e8


@dataclass(frozen=True)
class Chunk:
    """Combinations ``lo..hi-1`` of ``symbol`` evaluated over bars ``start..end-1``."""

    index: int
    symbol: str
    lo: int
    hi: int
    start: int
    end: int
    n_blocks: int

    @property
    def size(self) -> int:
        return self.hi - self.lo


def blocks_for(start: int, end: int, n_blocks: int) -> int:
    """CSCV blocks a window gets: the rule of ``optimizer.evaluate.evaluate`` (no blocks
    when the window is shorter than four bars a block)."""
    return n_blocks if end - start >= 4 * max(n_blocks, 1) else 0


def default_chunk_size(bars: int) -> int:
    return max(64, int(TARGET_EVALUATIONS_PER_CHUNK / max(bars, 1)))


def plan(
    windows: dict[str, tuple[int, int]], n_combinations: int, n_blocks: int, chunk_size: int | None = None
) -> list[Chunk]:
    """Chunks in the fixed concatenation order: symbols as given, combinations ascending."""
    chunks: list[Chunk] = []
    for symbol, (start, end) in windows.items():
        size = chunk_size or default_chunk_size(end)
        for lo in range(0, n_combinations, size):
            hi = min(n_combinations, lo + size)
            chunks.append(Chunk(len(chunks), symbol, lo, hi, start, end, blocks_for(start, end, n_blocks)))
    return chunks


def chunk_key(chunk: Chunk, values: np.ndarray, data_hash: str) -> str:
    """Content address of a chunk's result: its symbol's data, window, blocks and the exact
    parameter rows (so a resumed run never reuses a chunk computed for other rows)."""
    digest = hashlib.sha256()
    digest.update(
        f"{data_hash}|{chunk.symbol}|{chunk.start}|{chunk.end}|{chunk.n_blocks}|{chunk.lo}|{chunk.hi}".encode()
    )
    digest.update(np.ascontiguousarray(values[chunk.lo : chunk.hi]).tobytes())
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class ChunkResult:
    metrics: np.ndarray
    block_sum: np.ndarray
    block_sumsq: np.ndarray
    seconds: float


def run_chunk(
    spec: StrategySpec, prices: PriceArrays, values: np.ndarray, sim: SimConfig, interval: Interval, chunk: Chunk
) -> ChunkResult:
    """Evaluate one chunk where it runs (this process or a worker)."""
    began = time.perf_counter()
    rows = np.array(values[chunk.lo : chunk.hi], dtype=np.float64, order="C")  # writeable: see dask_cluster.writeable
    out = run_sweep(spec, prices, rows, sim, interval, chunk.start, chunk.end, chunk.n_blocks)
    return ChunkResult(out.metrics, out.block_sum, out.block_sumsq, time.perf_counter() - began)


class Assembly:
    """Per-symbol output arrays filled in place as chunks arrive (in any order), so the
    client holds the final arrays only, never the chunk results as well."""

    def __init__(self, chunks: list[Chunk], n_combinations: int) -> None:
        self._chunks = chunks
        self._metrics: dict[str, np.ndarray] = {}
        self._bsum: dict[str, np.ndarray] = {}
        self._bsq: dict[str, np.ndarray] = {}
        self._seconds: dict[str, float] = {}
        for c in chunks:
            if c.symbol not in self._metrics:
                self._metrics[c.symbol] = np.full((n_combinations, N_METRICS), np.nan)
                self._bsum[c.symbol] = np.zeros((n_combinations, c.n_blocks))
                self._bsq[c.symbol] = np.zeros((n_combinations, c.n_blocks))
                self._seconds[c.symbol] = 0.0

    def add(self, chunk: Chunk, result: ChunkResult) -> None:
        self._metrics[chunk.symbol][chunk.lo : chunk.hi] = result.metrics
        self._bsum[chunk.symbol][chunk.lo : chunk.hi] = result.block_sum
        self._bsq[chunk.symbol][chunk.lo : chunk.hi] = result.block_sumsq
        self._seconds[chunk.symbol] += result.seconds

    def outputs(self, load_seconds: float = 0.0) -> dict[str, SweepOutput]:
        out: dict[str, SweepOutput] = {}
        for symbol, metrics in self._metrics.items():
            first = next(c for c in self._chunks if c.symbol == symbol)
            starts = block_starts(first.end - first.start, first.n_blocks)
            counts = (
                np.diff(np.append(starts, first.end - first.start)) if first.n_blocks else np.empty(0, dtype=np.int64)
            )
            out[symbol] = SweepOutput(
                metrics,
                self._bsum[symbol],
                self._bsq[symbol],
                counts.astype(np.int64),
                self._seconds[symbol],
                load_seconds,
            )
        return out
