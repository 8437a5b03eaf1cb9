"""The backend contract and the chunked executor every non-default backend shares.

A backend turns (strategy, bars, parameter rows, windows) into one :class:`SweepOutput`
per symbol. :class:`ChunkedBackend` plans chunks, reuses checkpointed ones, asks its
``execute`` for the rest (in whatever order they finish), checkpoints each, and
assembles them in plan order. Subclasses only say where chunks run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from quantlab.engine.backends.checkpoint import CheckpointRun, open_run
from quantlab.engine.backends.chunks import Assembly, Chunk, ChunkResult, chunk_key, plan
from quantlab.errors import QuantlabError

if TYPE_CHECKING:
    from quantlab.engine.intervals import Interval
    from quantlab.engine.settings import SimConfig
    from quantlab.engine.signals import PriceArrays
    from quantlab.engine.strategy import StrategySpec
    from quantlab.engine.sweep import SweepOutput


class MarketInputs(Protocol):
    """What a backend reads of the research layer's :class:`quantlab.inputs.MarketInputs`
    (a protocol, so the engine does not import the layer above it)."""

    @property
    def prices(self) -> dict[str, PriceArrays]: ...
    @property
    def interval(self) -> Interval: ...
    @property
    def data_hash(self) -> str: ...
    @property
    def symbols(self) -> list[str]: ...


class Window(Protocol):
    """An evaluation window (``quantlab.optimizer.evaluate.Window``): bars ``start..end-1``."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


class SweepError(QuantlabError):
    """A chunk failed on every attempt."""


class Backend(Protocol):
    name: str

    def sweep(
        self,
        spec: StrategySpec,
        inputs: MarketInputs,
        values: np.ndarray,
        sim: SimConfig,
        windows: Mapping[str, Window],
        n_blocks: int,
        on_progress: Callable[[int], None] | None,
    ) -> dict[str, SweepOutput]: ...

    def begin_run(self, kind: str, cfg_hash: str, data_hash: str, reports: Any) -> CheckpointRun | None: ...

    def close(self) -> None: ...


def describe_chunk(spec: StrategySpec, values: np.ndarray, chunk: Chunk) -> str:
    """``SPY combinations 1000..1499 (fast 5..9, slow 20..200)``: what a failing chunk held."""
    rows = values[chunk.lo : chunk.hi]
    ranges = ", ".join(
        f"{name} {lo:g}" if lo == hi else f"{name} {lo:g}..{hi:g}"
        for i, name in enumerate(spec.param_names)
        for lo, hi in [(rows[:, i].min(), rows[:, i].max())]
    ) if rows.size else ""
    return f"{chunk.symbol} combinations {chunk.lo}..{chunk.hi - 1}" + (f" ({ranges})" if ranges else "")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class ChunkedBackend:
    """Chunks + checkpoints; ``execute`` decides where chunks run."""

    name = "chunked"

    def __init__(self, chunk_size: int | None = None, resume: str | None = None) -> None:
        self.chunk_size = chunk_size
        self.resume = resume
        self.run: CheckpointRun | None = None
        self.chunks_total = 0
        self.chunks_computed = 0
        self.chunks_reused = 0
        self.compute_seconds = 0.0
        self.wall_seconds = 0.0

    def begin_run(self, kind: str, cfg_hash: str, data_hash: str, reports: Any) -> CheckpointRun | None:
        self.run = open_run(kind, cfg_hash, data_hash, reports, self.resume)
        state = f"resuming ({self.run.chunks_at_start} chunks already done)" if self.run.resumed else "new run"
        say(f"checkpoints: {self.run.path / 'chunks'} ({state}); after a crash resume with --resume {self.run.run_id}")
        return self.run

    def execute(
        self, spec: StrategySpec, inputs: MarketInputs, values: np.ndarray, sim: SimConfig, chunks: list[Chunk]
    ) -> Iterator[tuple[Chunk, ChunkResult]]:
        raise NotImplementedError

    def sweep(
        self,
        spec: StrategySpec,
        inputs: MarketInputs,
        values: np.ndarray,
        sim: SimConfig,
        windows: Mapping[str, Window],
        n_blocks: int,
        on_progress: Callable[[int], None] | None,
    ) -> dict[str, SweepOutput]:
        began = time.perf_counter()
        values = np.ascontiguousarray(values, dtype=np.float64)
        chunks = plan({s: (w.start, w.end) for s, w in windows.items()}, values.shape[0], n_blocks, self.chunk_size)
        store = self.run.store if self.run is not None else None
        keys = {c.index: chunk_key(c, values, inputs.data_hash) for c in chunks}
        assembly = Assembly(chunks, values.shape[0])
        todo: list[Chunk] = []
        done = 0
        for c in chunks:
            if store is not None and store.has(keys[c.index]):
                assembly.add(c, store.load(keys[c.index]))
                done += c.size
            else:
                todo.append(c)
        self.chunks_total += len(chunks)
        self.chunks_reused += len(chunks) - len(todo)
        if on_progress is not None and done:
            on_progress(done)
        for chunk, result in self.execute(spec, inputs, values, sim, todo):
            if store is not None:
                store.save(keys[chunk.index], result)
            assembly.add(chunk, result)
            self.chunks_computed += 1
            self.compute_seconds += result.seconds
            done += chunk.size
            if on_progress is not None:
                on_progress(done)
        self.wall_seconds += time.perf_counter() - began
        return assembly.outputs()

    def report(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "chunks_total": self.chunks_total,
            "chunks_computed": self.chunks_computed,
            "chunks_reused": self.chunks_reused,
            "chunk_compute_seconds": round(self.compute_seconds, 3),
            "sweep_wall_seconds": round(self.wall_seconds, 3),
            "run_id": self.run.run_id if self.run else None,
        }

    def close(self) -> None:
        if self.run is not None:
            self.run.finish(self.report())


class InProcessChunked(ChunkedBackend):
    """Chunks run here, one after another (numba threads inside each): checkpoints and
    ``--resume`` without a cluster."""

    name = "in-process"

    def execute(
        self, spec: StrategySpec, inputs: MarketInputs, values: np.ndarray, sim: SimConfig, chunks: list[Chunk]
    ) -> Iterator[tuple[Chunk, ChunkResult]]:
        from quantlab.engine.backends.chunks import run_chunk

        for chunk in chunks:
            yield chunk, run_chunk(spec, inputs.prices[chunk.symbol], values, sim, inputs.interval, chunk)
