"""The backend contract and the chunked executor every non-default backend shares.

A backend turns (strategy, bars, parameter rows, windows) into one :class:`SweepOutput`
per symbol. :class:`ChunkedBackend` plans chunks, reuses checkpointed ones, asks its
``execute`` for the rest (in whatever order they finish), checkpoints each, and
assembles them in plan order. Subclasses only say where chunks run.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from quantlab.engine.backends.checkpoint import CheckpointRun, open_run
from quantlab.engine.backends.chunks import Assembly, Chunk, ChunkResult, chunk_key, plan, run_chunk
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


#: Seconds between progress lines of a chunked sweep (``QUANTLAB_PROGRESS_SECONDS``).
PROGRESS_SECONDS = float(os.environ.get("QUANTLAB_PROGRESS_SECONDS", "15"))


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
    ranges = (
        ", ".join(
            f"{name} {lo:g}" if lo == hi else f"{name} {lo:g}..{hi:g}"
            for i, name in enumerate(spec.param_names)
            for lo, hi in [(rows[:, i].min(), rows[:, i].max())]
        )
        if rows.size
        else ""
    )
    return f"{chunk.symbol} combinations {chunk.lo}..{chunk.hi - 1}" + (f" ({ranges})" if ranges else "")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class _Rate:
    """Combinations per second over the whole cluster, printed every ``PROGRESS_SECONDS``
    (the progress bar shows the same rate in a terminal; this line reaches logs too)."""

    def __init__(self, total: int, where: Callable[[], str]) -> None:
        self.total = total
        self.where = where
        self.done = 0
        self.began = self.last = time.perf_counter()

    def add(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= PROGRESS_SECONDS and self.done < self.total:
            self.last = now
            rate = self.done / max(now - self.began, 1e-9)
            say(
                f"sweep: {self.done:,} of {self.total:,} combinations, {rate:,.0f} combinations/s across {self.where()}"
            )


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
    ) -> Generator[tuple[Chunk, ChunkResult], None, None]:
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
        values = np.ascontiguousarray(values, dtype=np.float64)
        chunks = plan({s: (w.start, w.end) for s, w in windows.items()}, values.shape[0], n_blocks, self.chunk_size)
        assembly = Assembly(chunks, values.shape[0])
        for chunk, result in self.in_order(spec, inputs, values, sim, chunks, on_progress):
            assembly.add(chunk, result)
        return assembly.outputs()

    def in_order(
        self,
        spec: StrategySpec,
        inputs: MarketInputs,
        values: np.ndarray,
        sim: SimConfig,
        chunks: list[Chunk],
        on_progress: Callable[[int], None] | None,
    ) -> Iterator[tuple[Chunk, ChunkResult]]:
        """Every chunk's result in plan order: checkpointed ones loaded when their turn
        comes, the rest computed by ``execute`` (any order) and held only until then, so a
        consumer can stream them to disk (``quantlab.optimizer.stream``)."""
        began = time.perf_counter()
        store = self.run.store if self.run is not None else None
        keys = {c.index: chunk_key(c, values, inputs.data_hash) for c in chunks}
        reused = {c.index for c in chunks if store is not None and store.has(keys[c.index])}
        todo = [c for c in chunks if c.index not in reused]
        self.chunks_total += len(chunks)
        self.chunks_reused += len(reused)
        done = sum(c.size for c in chunks if c.index in reused)
        if on_progress is not None and done:
            on_progress(done)
        rate = _Rate(sum(c.size for c in todo), self.workers_text)
        computed = self.execute(spec, inputs, values, sim, todo)
        waiting: dict[int, ChunkResult] = {}
        try:
            for c in chunks:
                if c.index in reused:
                    assert store is not None
                    yield c, store.load(keys[c.index])
                    continue
                while c.index not in waiting:
                    chunk, result = next(computed)
                    if store is not None:
                        store.save(keys[chunk.index], result)
                    waiting[chunk.index] = result
                    self.chunks_computed += 1
                    self.compute_seconds += result.seconds
                    done += chunk.size
                    rate.add(chunk.size)
                    if on_progress is not None:
                        on_progress(done)
                yield c, waiting.pop(c.index)
        finally:
            computed.close()
            self.wall_seconds += time.perf_counter() - began

    def workers_text(self) -> str:
        """Where chunks run, for the progress line (``2 workers``)."""
        n = getattr(self, "n_workers", 0)
        return f"{n} worker{'s' * (n != 1)}" if n else "this process"

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
    ) -> Generator[tuple[Chunk, ChunkResult], None, None]:
        for chunk in chunks:
            yield chunk, run_chunk(spec, inputs.prices[chunk.symbol], values, sim, inputs.interval, chunk)
