"""Optimise without holding every result row: chunks stream to disk in plan order.

At 1e7 combinations the metric rows alone are 1.4 GB per symbol and the CSCV block
statistics 2.6 GB, and the tables built from them several times that. Here each chunk's
rows (in-sample and held-out metrics, status) go straight into ``results.parquet`` as
they arrive, in the fixed chunk order, while the client keeps only what the ranking and
the summary need: per combination a running (Kahan) sum of the ranking metric over
symbols and pass/traded flags, one column of the ranking metric per symbol (its
distribution) and of the held-out metric (the winner's held-out percentile), the NaN
counts, and the block statistics in flat files that CSCV memory-maps. The top rows are
read back from the finished file, so every downstream step (replay, holdout table, DSR,
PBO, summary) runs the same code on the same numbers as the in-memory path: the files
come out byte-identical (``tests/quantlab/scaleout/test_stream.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.engine.backends.chunks import Chunk, ChunkResult, default_chunk_size, plan
from quantlab.engine.settings import SimConfig
from quantlab.engine.strategy import StrategySpec
from quantlab.engine.sweep import SweepOutput, block_starts
from quantlab.errors import ConfigError, ParameterError
from quantlab.inputs import MarketInputs
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.optimizer.evaluate import Window
from quantlab.optimizer.filters import constraint_mask
from quantlab.optimizer.ranking import rank, status_column

#: Rows per parquet row group, in both paths (so their files are byte-identical).
ROW_GROUP_ROWS = 1 << 18
#: Result rows (symbols x combinations) from which ``optimize`` streams by default.
STREAM_ROWS = 2_000_000


def stream_threshold() -> int:
    """``$QUANTLAB_STREAM_ROWS`` or :data:`STREAM_ROWS`."""
    text = os.environ.get("QUANTLAB_STREAM_ROWS")
    if not text:
        return STREAM_ROWS
    if not text.isdigit():
        raise ConfigError(
            "QUANTLAB_STREAM_ROWS must be a whole number of result rows",
            found=repr(text),
            fix="e.g. QUANTLAB_STREAM_ROWS=2000000, or unset it",
        )
    return int(text)


def wanted(rows: int, stream: bool | None, save: bool) -> bool:
    """Stream this run? ``stream`` when given, else when ``save`` and ``rows`` (symbols x
    combinations) reach :func:`stream_threshold`: small grids keep today's in-memory path."""
    if stream and not save:
        raise ParameterError(
            "streamed results are written to the run folder",
            found="stream=True, save=False",
            fix="pass save=True, or stream=False to keep every row in memory",
        )
    return bool(stream) if stream is not None else save and rows >= stream_threshold()


def write_results(frame: pd.DataFrame, path: Path) -> None:
    """The in-memory path's ``results.parquet``: same writer settings as the stream's."""
    frame.to_parquet(path, index=False, compression="zstd", row_group_size=ROW_GROUP_ROWS)


class ParquetRows:
    """Appends frames to a parquet file in row groups of exactly ``ROW_GROUP_ROWS`` rows
    (as ``DataFrame.to_parquet`` would cut the whole table); renamed into place on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        self._writer: Any = None
        self._frames: list[pd.DataFrame] = []
        self._rows = 0

    def add(self, frame: pd.DataFrame) -> None:
        self._frames.append(frame)
        self._rows += len(frame)
        while self._rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, n: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = self._frames[0] if len(self._frames) == 1 else pd.concat(self._frames, ignore_index=True)
        table = pa.Table.from_pandas(frame.iloc[:n], preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=n)
        rest = frame.iloc[n:]
        self._frames = [rest] if len(rest) else []
        self._rows = len(rest)

    def close(self) -> Path:
        if self._rows:
            self._flush(self._rows)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.partial.unlink(missing_ok=True)


class Ranking:
    """Per combination: the ranking metric summed over symbols exactly as pandas'
    ``groupby().mean()`` sums (Kahan, in symbol order), and the pass/traded flags of
    :func:`quantlab.optimizer.ranking.rank`."""

    def __init__(self, n: int, metric: str, constraints: tuple[str, ...]) -> None:
        self.metric = metric
        self.constraints = constraints
        self.total = np.zeros(n)
        self.compensation = np.zeros(n)
        self.passes = np.ones(n, dtype=bool)
        self.traded = np.ones(n, dtype=bool)

    def add(self, frame: pd.DataFrame, lo: int, hi: int) -> None:
        value = frame[self.metric].to_numpy(dtype=np.float64)
        traded = frame["n_orders"].to_numpy() > 0
        self.traded[lo:hi] &= traded
        self.passes[lo:hi] &= constraint_mask(frame, self.constraints) & np.isfinite(value) & traded
        total, comp = self.total[lo:hi], self.compensation[lo:hi]
        seen = ~np.isnan(value)
        y = value - comp
        t = total + y
        with np.errstate(invalid="ignore"):
            c = t - total - y
        c[np.isnan(c)] = 0.0
        total[seen] = t[seen]
        comp[seen] = c[seen]

    def top(self, n_symbols: int, ascending: bool, top: int) -> np.ndarray:
        """Combination ids of the first ``top`` passing rows, best first (ties by id)."""
        ids = np.flatnonzero(self.passes)
        mean = self.total[ids] / n_symbols
        order = np.lexsort((ids, mean if ascending else -mean))
        return ids[order[:top]]


@dataclass
class NanRows:
    """``summary["nan_combinations"]`` counted as rows stream past."""

    count: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, frame: pd.DataFrame, columns: list[str]) -> None:
        bad = frame[frame["status"] != "ok"]
        if bad.empty:
            return
        self.count += len(bad)
        for status, n in bad["status"].value_counts().items():
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + int(n)
        if len(self.examples) < 5:
            self.examples += bad.head(5 - len(self.examples))[columns].to_dict("records")

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "by_status": dict(self.by_status), "examples": self.examples}


def nan_rows(results: pd.DataFrame, param_names: tuple[str, ...]) -> dict[str, Any]:
    """The in-memory path's ``summary["nan_combinations"]``."""
    rows = NanRows()
    rows.add(results, ["symbol", *param_names, "status"])
    return rows.to_dict()


class BlockFiles:
    """One symbol's CSCV block sums and sums of squares, appended chunk by chunk to flat
    float64 files (exact, so PBO and DSR match the in-memory path bit for bit) and
    memory-mapped read-only for CSCV: the client's heap never holds them."""

    def __init__(self, folder: Path, index: int, n: int, n_blocks: int) -> None:
        self.shape = (n, n_blocks)
        self.paths = (folder / f"blocks-{index}-sum.f64", folder / f"blocks-{index}-sumsq.f64")
        self._files = [open(p, "wb") for p in self.paths]  # noqa: SIM115 - closed in finish()

    def add(self, result: ChunkResult) -> None:
        for fh, arr in zip(self._files, (result.block_sum, result.block_sumsq), strict=True):
            np.ascontiguousarray(arr, dtype=np.float64).tofile(fh)

    def close(self) -> None:
        for fh in self._files:
            fh.close()

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        self.close()
        if self.shape[1] == 0:
            return np.zeros(self.shape), np.zeros(self.shape)
        return tuple(np.memmap(p, dtype=np.float64, mode="r", shape=self.shape) for p in self.paths)  # type: ignore[return-value]


@dataclass
class Streamed:
    """What the streamed sweep leaves for the rest of ``optimize``."""

    results_path: Path
    ranking: pd.DataFrame  # rank() of the top rows only: the first ``top`` passing combinations
    top_rows: pd.DataFrame  # results rows (every symbol) of those combinations
    n_passing: int
    any_traded: bool
    outputs: dict[str, SweepOutput]  # block statistics (memory-mapped), no metric rows
    nan_combinations: dict[str, Any]
    distribution: dict[str, Any]  # summary["metric_distribution"]
    holdout_peers: dict[str, np.ndarray]  # held-out ranking metric per symbol (NaN where it never traded)
    seconds: float
    work: Path

    def cleanup(self) -> None:
        self.outputs.clear()
        shutil.rmtree(self.work, ignore_errors=True)


def _chunk_runner() -> Any:
    from quantlab.engine.backends import active_backend
    from quantlab.engine.backends.base import ChunkedBackend, InProcessChunked

    backend = active_backend()
    if isinstance(backend, ChunkedBackend):
        return backend
    size = os.environ.get("QUANTLAB_CHUNK_SIZE")
    return InProcessChunked(int(size) if size and size.isdigit() else None)


def _frame(
    spec: StrategySpec, values: np.ndarray, c: Chunk, result: ChunkResult, held: ChunkResult | None
) -> pd.DataFrame:
    """The chunk's result rows, built as :func:`quantlab.optimizer.evaluate.tidy` builds them."""
    frame = pd.DataFrame(values[c.lo : c.hi], columns=list(spec.param_names))
    frame.insert(0, "combo", np.arange(c.lo, c.hi, dtype=np.int64))
    frame.insert(0, "symbol", c.symbol)
    parts = [frame, pd.DataFrame(result.metrics, columns=list(METRIC_NAMES))]
    if held is not None:
        parts.append(pd.DataFrame(held.metrics, columns=[f"holdout_{m}" for m in METRIC_NAMES]))
    frame = pd.concat(parts, axis=1)
    frame["status"] = status_column(frame)
    return frame


def stream_sweep(
    spec: StrategySpec,
    inputs: MarketInputs,
    values: np.ndarray,
    sim: SimConfig,
    windows: dict[str, Window],
    holdout_windows: dict[str, Window] | None,
    n_blocks: int,
    metric: str,
    constraints: tuple[str, ...],
    top: int,
    work_parent: Path,
    on_progress: Callable[[int], None] | None,
) -> Streamed:
    """Sweep in chunks (on the active backend, or here), writing ``results.parquet`` as
    chunks arrive; see the module docstring for what is kept."""
    from quantlab.optimizer.filters import LOWER_IS_BETTER

    values = np.ascontiguousarray(values, dtype=np.float64)
    n = values.shape[0]
    work = Path(tempfile.mkdtemp(prefix=".stream-", dir=work_parent))
    runner = _chunk_runner()
    # one row partition for both windows, so in-sample and held-out chunks pair up
    size = runner.chunk_size or default_chunk_size(max(len(inputs.prices[s]) for s in windows))
    chunks = plan({s: (w.start, w.end) for s, w in windows.items()}, n, n_blocks, size)
    writer = ParquetRows(work / "results.parquet")
    ranking = Ranking(n, metric, constraints)
    nans = NanRows()
    columns: dict[str, np.ndarray] = {s: np.full(n, np.nan) for s in windows}
    peers: dict[str, np.ndarray] = {}
    blocks = {
        s: BlockFiles(work, i, n, next(c.n_blocks for c in chunks if c.symbol == s)) for i, s in enumerate(windows)
    }
    example_columns = ["symbol", *spec.param_names, "status"]
    seconds = 0.0
    try:
        pairs: Iterator[tuple[tuple[Chunk, ChunkResult], tuple[Chunk, ChunkResult] | None]]
        in_sample = runner.in_order(spec, inputs, values, sim, chunks, on_progress)
        if holdout_windows is not None:
            held_chunks = plan({s: (w.start, w.end) for s, w in holdout_windows.items()}, n, 0, size)
            held = runner.in_order(spec, inputs, values, sim, held_chunks, None)
            pairs = zip(in_sample, held, strict=True)
            peers = {s: np.full(n, np.nan) for s in windows}
        else:
            pairs = ((pair, None) for pair in in_sample)
        for (c, result), other in pairs:
            held_result = None
            if other is not None:
                hc, held_result = other
                assert (hc.symbol, hc.lo, hc.hi) == (c.symbol, c.lo, c.hi)
            seconds += result.seconds
            frame = _frame(spec, values, c, result, held_result)
            blocks[c.symbol].add(result)
            ranking.add(frame, c.lo, c.hi)
            nans.add(frame, example_columns)
            traded = result.metrics[:, METRIC_NAMES.index("n_orders")] > 0
            columns[c.symbol][c.lo : c.hi] = np.where(traded, result.metrics[:, METRIC_NAMES.index(metric)], np.nan)
            if held_result is not None:
                held_traded = held_result.metrics[:, METRIC_NAMES.index("n_orders")] > 0
                peers[c.symbol][c.lo : c.hi] = np.where(
                    held_traded, held_result.metrics[:, METRIC_NAMES.index(metric)], np.nan
                )
            writer.add(frame)
            del frame, result, held_result
        path = writer.close()
    except BaseException:
        writer.abort()
        for files in blocks.values():
            files.close()
        shutil.rmtree(work, ignore_errors=True)
        raise
    outputs: dict[str, SweepOutput] = {}
    for symbol, files in blocks.items():
        bsum, bsq = files.finish()
        w = windows[symbol]
        nb = files.shape[1]
        starts = block_starts(w.end - w.start, nb)
        counts = np.diff(np.append(starts, w.end - w.start)) if nb else np.empty(0, dtype=np.int64)
        outputs[symbol] = SweepOutput(np.empty((0, len(METRIC_NAMES))), bsum, bsq, counts.astype(np.int64), 0.0)
    best = ranking.top(len(windows), metric in LOWER_IS_BETTER, top)
    top_rows = read_combos(path, best)
    table = rank(top_rows, spec.param_names, metric, constraints) if len(top_rows) else rank_empty(spec, metric)
    return Streamed(
        path,
        table,
        top_rows,
        int(ranking.passes.sum()),
        bool(ranking.traded.any()),
        outputs,
        nans.to_dict(),
        metric_distribution(columns, metric),
        peers,
        seconds,
        work,
    )


def rank_empty(spec: StrategySpec, metric: str) -> pd.DataFrame:
    return pd.DataFrame(columns=["combo", *spec.param_names, *METRIC_NAMES, "passes", "traded", "n_symbols", "rank"])


def read_combos(path: Path, combos: np.ndarray) -> pd.DataFrame:
    """The result rows of ``combos`` (every symbol), in file order; row groups whose combo
    range misses them are skipped."""
    import pyarrow.parquet as pq

    if combos.size == 0:
        return pd.DataFrame()
    wanted = set(int(c) for c in combos)
    table = pq.read_table(path, filters=[("combo", "in", sorted(wanted))])
    return table.to_pandas().reset_index(drop=True)


def metric_distribution(columns: dict[str, np.ndarray], metric: str, bins: int = 20) -> dict[str, Any]:
    """Per symbol: quantiles and a histogram of the ranking metric over the combinations
    that traded (``summary["metric_distribution"]``; the same function in both paths)."""
    out: dict[str, Any] = {}
    qs = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
    for symbol, column in columns.items():
        finite = column[np.isfinite(column)]
        entry: dict[str, Any] = {"metric": metric, "n": int(finite.size)}
        if finite.size:
            entry["quantiles"] = {f"{q:g}": float(v) for q, v in zip(qs, np.quantile(finite, qs), strict=True)}
            counts, edges = np.histogram(finite, bins=bins)
            entry["histogram"] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}
        out[symbol] = entry
    return out


def distribution_columns(results: pd.DataFrame, metric: str, n: int) -> dict[str, np.ndarray]:
    """The in-memory path's per-symbol ranking-metric columns (NaN where it never traded)."""
    out: dict[str, np.ndarray] = {}
    for symbol, rows in results.groupby("symbol", sort=False):
        column = np.full(n, np.nan)
        traded = rows["n_orders"].to_numpy() > 0
        column[rows["combo"].to_numpy()] = np.where(traded, rows[metric].to_numpy(dtype=np.float64), np.nan)
        out[str(symbol)] = column
    return out
