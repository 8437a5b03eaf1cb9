"""Streamed optimisation (issue 14 item 6): results written chunk by chunk, ranking and
statistics kept incrementally, and every file identical to the in-memory path."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import quantlab
from quantlab.engine.backends import InProcessChunked, make_backend, use_backend
from quantlab.errors import ParameterError
from quantlab.optimizer import stream
from quantlab.optimizer.ranking import rank
from quantlab.overfit import pbo_from_block_stats

GRID = "fast=5:40:5,slow=20:120:10"
VOLATILE = {"run_id", "created_at", "timings", "evaluations_per_second"}
SAME_FILES = ("results.parquet", "top.csv", "holdout.csv", "overfit.json", "equity.csv", "trades.csv")


def _optimize(reports: Path, **kwargs: object) -> quantlab.optimizer.api.OptimizeResult:
    return quantlab.optimize(
        "sma_cross",
        "SPY,QQQ",
        GRID,
        holdout=0.3,
        top=5,
        reports=reports,
        report=False,
        constraints=["max_drawdown > -0.6"],
        **kwargs,
    )


def _summary(path: Path) -> dict[str, object]:
    return {k: v for k, v in json.loads((path / "summary.json").read_text()).items() if k not in VOLATILE}


@pytest.fixture(autouse=True)
def small_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Row groups of 37 rows and chunks of 7 combinations: boundaries that never line up."""
    monkeypatch.setattr(stream, "ROW_GROUP_ROWS", 37)
    monkeypatch.setenv("QUANTLAB_CHUNK_SIZE", "7")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stream, "ROW_GROUP_ROWS", 37)
        return Path(_optimize(tmp_path_factory.mktemp("inmemory"), stream=False).path)


def _assert_same(path: Path, reference: Path) -> None:
    for name in SAME_FILES:
        assert (path / name).read_bytes() == (reference / name).read_bytes(), name
    assert _summary(path) == _summary(reference)


def test_streamed_run_is_byte_identical_to_the_in_memory_run(reference: Path, tmp_path: Path) -> None:
    result = _optimize(tmp_path, stream=True)
    path = Path(result.path)
    _assert_same(path, reference)
    assert result.results is None  # never held: the rows are only in the file
    meta = pq.ParquetFile(path / "results.parquet").metadata
    n = json.loads((path / "summary.json").read_text())["n_combinations"]
    assert meta.num_row_groups == -(-2 * n // 37) and meta.num_rows == 2 * n
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".stream-")] == []  # work files removed
    summary = json.loads((path / "summary.json").read_text())
    dist = summary["metric_distribution"]["SPY"]
    assert dist["n"] > 0 and dist["quantiles"]["0"] <= dist["quantiles"]["0.5"] <= dist["quantiles"]["1"]
    assert sum(dist["histogram"]["counts"]) == dist["n"]
    assert result.ranking["rank"].tolist() == [1, 2, 3, 4, 5]


def test_streamed_run_on_two_local_workers_is_byte_identical(reference: Path, tmp_path: Path) -> None:
    with use_backend(make_backend("local:2", chunk_size=7)) as backend:
        path = Path(_optimize(tmp_path, stream=True).path)
        assert backend.report()["chunks_computed"] > 8  # type: ignore[union-attr]
    _assert_same(path, reference)


def test_large_runs_stream_by_default_and_streaming_needs_a_run_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTLAB_STREAM_ROWS", "96")
    assert stream.wanted(96, None, True) and not stream.wanted(95, None, True)
    assert not stream.wanted(10**9, None, False)  # nothing saved: today's path
    assert stream.wanted(1, True, True) and not stream.wanted(10**9, False, True)
    monkeypatch.delenv("QUANTLAB_STREAM_ROWS")
    assert stream.wanted(stream.STREAM_ROWS, None, True) and not stream.wanted(1000, None, True)
    with pytest.raises(ParameterError, match="run folder"):
        stream.wanted(10, True, False)
    monkeypatch.setenv("QUANTLAB_STREAM_ROWS", "lots")
    with pytest.raises(quantlab.errors.ConfigError, match="QUANTLAB_STREAM_ROWS"):
        stream.wanted(10, None, True)


def test_running_mean_over_symbols_and_flags_match_rank() -> None:
    rng = np.random.default_rng(3)
    n, frames = 500, []
    ranking = stream.Ranking(n, "sharpe", ("max_drawdown > -0.5",))
    for symbol in ("A", "B", "C"):
        frame = pd.DataFrame(
            {
                "symbol": symbol,
                "combo": np.arange(n),
                "p": np.arange(n, dtype=float),
                "sharpe": rng.standard_normal(n) * 10.0 ** rng.integers(-6, 6, n),
                "max_drawdown": -rng.random(n),
                "n_orders": rng.integers(0, 3, n).astype(float),
            }
        )
        frame.loc[rng.integers(0, n, 20), "sharpe"] = np.nan
        for m in ("total_return", "cagr", "sortino"):
            frame[m] = 0.0
        ranking.add(frame, 0, n)
        frames.append(frame)
    results = pd.concat(frames, ignore_index=True)
    from quantlab.kernels.layout import METRIC_NAMES

    for m in METRIC_NAMES:
        if m not in results:
            results[m] = 0.0
    expected = rank(results, ("p",), "sharpe", ("max_drawdown > -0.5",))
    passing = expected[expected["passes"]]
    assert ranking.top(3, False, 10).tolist() == passing["combo"].head(10).tolist()
    assert int(ranking.passes.sum()) == len(passing)
    means = passing.set_index("combo")["sharpe"]
    assert (ranking.total[means.index] / 3 == means.to_numpy()).all()  # bit for bit, as pandas sums


def test_pbo_from_memory_mapped_statistics_with_flat_rows_is_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantlab.overfit import blocks, metric_from_block_stats

    monkeypatch.setattr(blocks, "_SLAB", 7)  # slabs that release their mapped pages as they go
    rng = np.random.default_rng(5)
    returns = rng.standard_normal((16 * 20, 300)) * 0.01
    returns[:, [3, 77]] = 0.0  # never traded: excluded, so the mapped rows are compacted
    from quantlab.overfit import block_stats

    bsum, bsq, count = block_stats(returns, 16)
    mapped = []
    for name, arr in (("s", bsum), ("ss", bsq)):
        arr.astype(np.float64).tofile(tmp_path / name)
        mapped.append(np.memmap(tmp_path / name, dtype=np.float64, mode="r", shape=arr.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = pbo_from_block_stats(bsum, bsq, count)
        b = pbo_from_block_stats(mapped[0], mapped[1], count)
    assert a.excluded.tolist() == b.excluded.tolist() == [3, 77]
    assert a.pbo == b.pbo and np.array_equal(a.logits, b.logits) and np.array_equal(a.chosen, b.chosen)
    assert np.array_equal(blocks.row_sums(mapped[1]), bsq.sum(axis=1))
    srs = metric_from_block_stats(mapped[0], mapped[1], count)
    assert np.array_equal(srs, metric_from_block_stats(bsum, bsq, count), equal_nan=True)


def test_report_of_a_huge_results_file_skips_the_search_charts(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from quantlab.reports import build_pages, builder

    path = Path(shutil.copytree(reference, tmp_path / reference.name))
    monkeypatch.setattr(builder, "REPORT_MAX_ROWS", 10)
    monkeypatch.setattr(builder.Run, "results", lambda self: pytest.fail("read results.parquet whole"))
    outcome = build_pages(path, "charts")
    assert "has 158 rows; these charts are drawn up to 10" in outcome.skipped["Parameter heatmap"]
    assert "In-sample vs holdout" in outcome.skipped and (path / "report.html").exists()


def test_streamed_run_that_failed_midway_resumes_from_its_checkpoints(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantlab.engine.backends import (
        base as chunks,  # where the in-process backend looks run_chunk up
    )

    real, calls = chunks.run_chunk, []

    def dies_after_five(*args: object) -> object:
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt  # the client going down mid-sweep
        return real(*args)

    monkeypatch.setattr(chunks, "run_chunk", dies_after_five)
    with pytest.raises(KeyboardInterrupt), use_backend(InProcessChunked(7)):  # checkpoints, no cluster
        _optimize(tmp_path, stream=True)
    (run,) = [p for p in tmp_path.iterdir() if p.name.startswith("optimize-")]
    assert not (run / "summary.json").exists() and not (run / "results.parquet").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".stream-")] == []  # no partial results left
    monkeypatch.setattr(chunks, "run_chunk", real)
    with use_backend(make_backend(None, resume=run.name, chunk_size=7)) as backend:
        _optimize(tmp_path, stream=True)
        report = backend.report()  # type: ignore[union-attr]
    assert report["chunks_reused"] == 5 and report["chunks_computed"] == report["chunks_total"] - 5
    _assert_same(run, reference)


def test_a_chunked_sweep_prints_combinations_per_second(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from quantlab.engine.backends import base
    from quantlab.engine.registry import get_strategy
    from quantlab.engine.settings import SimConfig
    from quantlab.inputs import load_inputs
    from quantlab.optimizer.evaluate import Window, evaluate

    monkeypatch.setattr(base, "PROGRESS_SECONDS", 0.0)
    inputs = load_inputs("SPY", "1d", None, None, None, None)
    values = np.array([[f, s] for f in (5.0, 10.0, 15.0) for s in (20.0, 40.0, 60.0, 80.0, 100.0)])
    with use_backend(InProcessChunked(4)):
        evaluate(get_strategy("sma_cross"), inputs, values, SimConfig(), {"SPY": Window(0, 500)}, 4)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep: ")]
    assert lines[0].startswith("sweep: 4 of 15 combinations, ") and lines[0].endswith(
        "combinations/s across this process"
    )
    assert len(lines) == 3  # after chunks 1-3; the last one is the end, not progress
