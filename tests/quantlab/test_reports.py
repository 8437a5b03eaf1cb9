"""Report pages of real runs on the bundled data: pages, charts, offline, QuantStats failures."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.errors import ReportError
from quantlab.reports import build
from quantlab.reports.benchmark import load_benchmark
from tests.quantlab.test_report_support import copy_runs, runs, source_runs  # noqa: F401

EXPECTED = {
    "backtest": ["Equity and drawdown", "Price and trades", "Monthly returns", "Trade returns"],
    "optimize": [
        "Equity and drawdown",
        "Price and trades",
        "Parameter heatmap",
        "In-sample vs holdout",
        "Deflated Sharpe ratio",
        "PBO: logit distribution",
        "Performance degradation",
        "Monthly returns",
        "Trade returns",
    ],
    "tpe": [
        "Equity and drawdown",
        "Price and trades",
        "Parameter heatmap",
        "In-sample vs holdout",
        "Optuna trial history",
        "Parameter importances",
        "Deflated Sharpe ratio",
        "PBO: logit distribution",
        "Performance degradation",
        "Monthly returns",
        "Trade returns",
    ],
    "walkforward": [
        "Walk-forward folds and stitched out-of-sample equity",
        "Equity and drawdown",
        "In-sample vs out-of-sample by fold",
        "Parameter drift",
        "Walk-forward PBO",
        "Monthly returns",
        "Trade returns",
    ],
}
REMOTE = re.compile(r"<(?:script|link|img|iframe)[^>]+(?:src|href)=[\"']?(?:https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="session")
def built(source_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    """Every kind of run built once with its QuantStats tearsheet (read-only for tests)."""
    copies = copy_runs(source_runs, tmp_path_factory.mktemp("built") / "reports")
    return {kind: build(path) for kind, path in copies.items()}


def _run_id(path: Path) -> str:
    return path.name


# --- pages per run kind -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_build_writes_both_pages_and_the_expected_charts(built: dict[str, Any], kind: str) -> None:
    outcome = built[kind]
    assert outcome.ok, outcome.failures
    assert set(outcome.pages) == {"report", "tearsheet"}
    assert all(p.is_file() and p.stat().st_size > 10_000 for p in outcome.pages.values())
    assert len(outcome.charts) == len(EXPECTED[kind])
    for title, prefix in zip(outcome.charts, EXPECTED[kind], strict=True):
        assert title.startswith(prefix), (title, prefix)
    text = outcome.pages["report"].read_text()
    for title in outcome.charts:
        assert title in text or json.dumps(title)[1:-1] in text
    assert (outcome.path / "trades.csv").is_file() and (outcome.path / "summary.json").is_file()
    assert 'href="tearsheet.html"' in text and 'href="trades.csv"' in text and 'href="summary.json"' in text


def test_grid_search_says_why_optuna_charts_are_absent(built: dict[str, Any]) -> None:
    skipped = built["optimize"].skipped
    assert skipped["Optuna trial history"] == "method was grid, not tpe"
    assert "Parameter importances" in skipped


def test_heatmap_marks_the_chosen_point(built: dict[str, Any]) -> None:
    summary = json.loads((built["optimize"].path / "summary.json").read_text())
    text = built["optimize"].pages["report"].read_text()
    assert '"name":"chosen"' in text
    assert summary["best"]["params"]["fast"] in (10.0, 20.0, 30.0, 40.0)


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_pages_open_offline(built: dict[str, Any], kind: str) -> None:
    outcome = built[kind]
    for page in (*outcome.pages.values(), outcome.index):
        text = page.read_text()
        assert not REMOTE.search(text), f"{page.name} loads something from the network: {REMOTE.search(text)}"
        assert "cdn.plot.ly/plotly" not in text
    report = outcome.pages["report"].read_text()
    assert report.count("* plotly.js v") == 1  # embedded exactly once, shared by every chart
    assert report.count('class="plotly-graph-div"') == len(outcome.charts)


def test_index_links_every_built_run(built: dict[str, Any]) -> None:
    index = built["backtest"].index
    assert index == built["backtest"].path.parent / "index.html"
    text = index.read_text()
    for outcome in built.values():
        assert f'href="{outcome.run_id}/report.html"' in text
        assert f'href="{outcome.run_id}/tearsheet.html"' in text


def test_tearsheet_compares_with_spy_from_the_store(built: dict[str, Any]) -> None:
    text = built["backtest"].pages["tearsheet"].read_text()
    assert "Benchmark: SPY" in text
    assert "sma_cross SPY" in text and "sma_cross QQQ" in text


def test_benchmark_is_spys_total_return_on_the_run_dates() -> None:
    from quantlab import data

    spy = data.load("SPY")
    index = spy.index[100:400]
    bench = load_benchmark(index)
    assert bench.symbol == "SPY" and bench.field == "adj_close"
    expected = spy["adj_close"].loc[index].pct_change().fillna(0.0)
    pd.testing.assert_series_equal(bench.returns, expected, check_names=False)
    assert bench.equity(100.0).iloc[-1] == pytest.approx(
        100.0 * spy["adj_close"].loc[index[-1]] / spy["adj_close"].loc[index[0]]
    )


# --- determinism, QuantStats failures and noise -------------------------------------------------


def test_report_page_is_deterministic(runs: dict[str, Path]) -> None:  # noqa: F811
    first = build(runs["optimize"], tearsheet=False).pages["report"].read_bytes()
    second = build(runs["optimize"], tearsheet=False).pages["report"].read_bytes()
    assert first == second


def test_quantstats_failure_still_writes_the_plotly_page(
    runs: dict[str, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import quantstats

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("columns overlap but no suffix specified (simulated pandas upgrade)")

    monkeypatch.setattr(quantstats.reports, "html", broken)
    stale = runs["backtest"] / "tearsheet.html"
    stale.write_text("old tearsheet")
    outcome = build(runs["backtest"])
    assert not outcome.ok
    assert set(outcome.failures) == {"tearsheet"}
    assert "QuantStats" in outcome.failures["tearsheet"] and "simulated pandas upgrade" in outcome.failures["tearsheet"]
    assert set(outcome.pages) == {"report"} and not stale.exists()
    text = outcome.pages["report"].read_text()
    assert "The QuantStats tearsheet could not be written" in text and "simulated pandas upgrade" in text
    assert len(outcome.charts) == len(EXPECTED["backtest"])

    result = CliRunner().invoke(cli, ["report", runs["backtest"].name])
    assert result.exit_code == 0, result.output
    assert "FAILED tearsheet" in result.output and "simulated pandas upgrade" in result.output
    assert "report:" in result.output


def test_quantstats_missing_is_reported_not_raised(runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import quantlab.reports.tearsheet as tearsheet

    def missing() -> Any:
        raise ModuleNotFoundError("No module named 'quantstats'")

    monkeypatch.setattr(tearsheet, "import_quantstats", missing)
    outcome = build(runs["walkforward"])
    assert "No module named 'quantstats'" in outcome.failures["tearsheet"]
    assert outcome.pages["report"].is_file()


def test_tearsheet_is_quiet_and_leaves_matplotlib_alone(
    runs: dict[str, Path],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    font = list(matplotlib.rcParams["font.family"])
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = build(runs["backtest"])
    assert outcome.ok, outcome.failures
    assert "findfont" not in caplog.text
    noisy = [w for w in caught if re.search(r"quantstats|matplotlib|seaborn", str(w.filename))]
    assert not noisy, [str(w.message) for w in noisy]
    assert list(matplotlib.rcParams["font.family"]) == font


def test_missing_benchmark_is_a_warning_not_a_failure(runs: dict[str, Path]) -> None:  # noqa: F811
    outcome = build(runs["backtest"], benchmark="NOSUCH", tearsheet=False)
    assert outcome.ok
    assert any("NOSUCH" in w for w in outcome.warnings)
    assert "NOSUCH" in outcome.pages["report"].read_text()


def test_build_accepts_a_run_id_or_a_folder(runs: dict[str, Path]) -> None:  # noqa: F811
    by_id = build(runs["backtest"].name, tearsheet=False)
    by_path = build(str(runs["backtest"]), tearsheet=False)
    assert by_id.path == by_path.path == runs["backtest"]


# --- runs, index, compare -------------------------------------------------------------------------


def test_runs_lists_every_run_with_key_metrics(runs: dict[str, Path]) -> None:  # noqa: F811
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 0, result.output
    for path in runs.values():
        assert path.name in result.output
    assert "sma_cross" in result.output and "SPY,QQQ" in result.output and "sharpe" in result.output

    listed = json.loads(CliRunner().invoke(cli, ["runs", "--json"]).output)
    assert {r["run_id"] for r in listed} == {p.name for p in runs.values()}
    bt = next(r for r in listed if r["kind"] == "backtest")
    summary = json.loads((runs["backtest"] / "summary.json").read_text())
    mean_sharpe = sum(m["sharpe"] for m in summary["metrics"].values()) / 2
    assert bt["metrics"]["sharpe"] == pytest.approx(mean_sharpe)
    assert bt["params"] == {"fast": 20.0, "slow": 50.0} and bt["symbols"] == ["SPY", "QQQ"]
    wf = next(r for r in listed if r["kind"] == "walkforward")
    assert wf["basis"].startswith("out-of-sample") and wf["metrics"]["sharpe"] is not None

    only = json.loads(CliRunner().invoke(cli, ["runs", "--json", "--kind", "optimize"]).output)
    assert sorted(r["kind"] for r in only) == ["optimize", "optimize"]


def test_runs_in_an_empty_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", "--reports", str(tmp_path / "nothing")])
    assert result.exit_code == 0
    assert "No runs in" in result.output


def test_index_lists_runs_not_built_yet_with_the_command(runs: dict[str, Path]) -> None:  # noqa: F811
    outcome = build(runs["backtest"], tearsheet=False)
    text = outcome.index.read_text()
    assert f'href="{runs["backtest"].name}/report.html"' in text
    assert f"quantlab report {runs['optimize'].name}" in text


def test_compare_names_the_best_and_writes_table_and_page(runs: dict[str, Path]) -> None:  # noqa: F811
    ids = [runs["backtest"].name, runs["optimize"].name, runs["walkforward"].name]
    result = CliRunner().invoke(cli, ["compare", *ids, "--metric", "sharpe"])
    assert result.exit_code == 0, result.output
    folders = list((runs["backtest"].parent).glob("compare-*"))
    assert len(folders) == 1
    table = pd.read_csv(folders[0] / "compare.csv")
    assert len(table) == 6 and set(table["run_id"]) == set(ids)
    # backtest, optimize and walk-forward curves are ranked within their own sample, never against each other
    for sample, rows in table.groupby("sample"):
        best = rows.loc[rows["sharpe"].idxmax()]
        assert f"Best by sharpe among {sample} runs: {best['run_id']} ({best['symbol']})" in result.output
    page = (folders[0] / "compare.html").read_text()
    assert "Equity curves (growth of 1)" in page and not REMOTE.search(page)
    assert folders[0].name in (runs["backtest"].parent / "index.html").read_text()

    again = CliRunner().invoke(cli, ["compare", *reversed(ids), "--metric", "volatility"])
    assert again.exit_code == 0
    assert len(list(runs["backtest"].parent.glob("compare-*"))) == 1  # same runs, same folder
    table = pd.read_csv(folders[0] / "compare.csv")
    for sample, rows in table.groupby("sample"):
        best = rows.loc[rows["volatility"].idxmin()]  # lower is better
        assert f"Best by volatility among {sample} runs: {best['run_id']} ({best['symbol']})" in again.output


def test_compare_metrics_agree_with_vectorbt(runs: dict[str, Path]) -> None:  # noqa: F811
    from quantlab.reports import compare

    result = compare([runs["backtest"].name, runs["optimize"].name], metric="cagr")
    summary = json.loads((runs["backtest"] / "summary.json").read_text())
    rows = result.table[result.table["run_id"] == runs["backtest"].name].set_index("symbol")
    for symbol, metrics in summary["metrics"].items():
        for name in ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility", "calmar"):
            assert rows.loc[symbol, name] == pytest.approx(metrics[name], rel=1e-9), (symbol, name)


def test_compare_bad_input(runs: dict[str, Path]) -> None:  # noqa: F811
    one = CliRunner().invoke(cli, ["compare", runs["backtest"].name])
    assert one.exit_code == 1 and "at least two" in one.output
    typo = CliRunner().invoke(cli, ["compare", runs["backtest"].name, runs["optimize"].name, "--metric", "sharp"])
    assert typo.exit_code == 1 and "did you mean sharpe" in typo.output


# --- bad input ------------------------------------------------------------------------------------


def test_unknown_run_id_suggests_close_ids(runs: dict[str, Path]) -> None:  # noqa: F811
    wrong = runs["backtest"].name[:-1] + "x"
    result = CliRunner().invoke(cli, ["report", wrong])
    assert result.exit_code == 1
    assert f"unknown run id '{wrong}'" in result.output
    assert f"did you mean {runs['backtest'].name}" in result.output and "quantlab runs" in result.output


def test_run_folder_without_summary(runs: dict[str, Path]) -> None:  # noqa: F811
    (runs["backtest"] / "summary.json").unlink()
    result = CliRunner().invoke(cli, ["report", runs["backtest"].name])
    assert result.exit_code == 1
    assert "has no summary.json" in result.output and "rerun" in result.output


def test_optimize_run_without_results(runs: dict[str, Path]) -> None:  # noqa: F811
    (runs["optimize"] / "results.parquet").unlink()
    result = CliRunner().invoke(cli, ["report", runs["optimize"].name])
    assert result.exit_code == 1
    assert "lacks results.parquet" in result.output and "quantlab optimize" in result.output
    with pytest.raises(ReportError, match="results.parquet"):
        build(runs["optimize"])


def test_corrupt_equity_names_the_file(runs: dict[str, Path]) -> None:  # noqa: F811
    (runs["backtest"] / "equity.csv").write_text("garbage\n")
    result = CliRunner().invoke(cli, ["report", runs["backtest"].name, "--no-tearsheet"])
    assert result.exit_code == 1 and "cannot read equity.csv" in result.output


def test_corrupt_summary(runs: dict[str, Path]) -> None:  # noqa: F811
    (runs["backtest"] / "summary.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["report", runs["backtest"].name])
    assert result.exit_code == 1 and "cannot read summary.json" in result.output
    listed = CliRunner().invoke(cli, ["runs"])
    assert listed.exit_code == 0 and "unreadable summary.json" in listed.output


@pytest.fixture
def unwritable(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make a folder and everything below it unwritable. Normal users get chmod 0o555;
    root ignores modes, so temp files there are refused with the PermissionError a
    read-only folder raises."""
    import os
    import tempfile

    restore: list[tuple[Path, int]] = []

    def apply(folder: Path) -> None:
        if os.geteuid() != 0:
            for path in (folder, *(p for p in folder.rglob("*") if p.is_dir())):
                restore.append((path, path.stat().st_mode))
                path.chmod(0o555)
            return
        original = tempfile.mkstemp

        def refuse(*args: Any, **kwargs: Any) -> Any:
            target = Path(kwargs.get("dir") or (args[2] if len(args) > 2 else ".")).resolve()
            if target == folder.resolve() or folder.resolve() in target.parents:
                raise PermissionError(13, "Permission denied", str(target))
            return original(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", refuse)

    yield apply
    for path, mode in reversed(restore):
        path.chmod(mode)


def test_unwritable_reports_folder(runs: dict[str, Path], unwritable: Any) -> None:  # noqa: F811
    reports = runs["backtest"].parent
    unwritable(reports)
    result = CliRunner().invoke(cli, ["report", runs["backtest"].name, "--no-tearsheet"])
    assert result.exit_code == 1
    assert "cannot write to the reports folder" in result.output and "Permission denied" in result.output
    result = CliRunner().invoke(cli, ["compare", runs["backtest"].name, runs["optimize"].name])
    assert result.exit_code == 1 and "cannot write to the reports folder" in result.output
