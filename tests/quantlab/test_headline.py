"""One headline per run, labelled with its window and return basis, the same on the CLI, in
summary.json, on the page and in the tearsheet; `compare` keeps in- and out-of-sample apart."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from quantlab.cli import cli
from quantlab.reports import build, compare
from quantlab.runs.headline import run_headline, sentence, windows
from tests.quantlab.test_report_support import START, copy_runs, runs, source_runs  # noqa: F401


def test_summary_json_carries_the_labelled_headline_and_verdict(source_runs: dict[str, Path]) -> None:  # noqa: F811
    opt = json.loads((source_runs["optimize"] / "summary.json").read_text())
    head = opt["headline"]
    assert (
        head["window"] == "in-sample" and head["returns_basis"] == "price" and head["equity_window"] == "full history"
    )
    assert head["metrics"]["total_return"] == pytest.approx(opt["best"]["metrics_mean"]["total_return"])
    assert [w["window"] for w in head["windows"]] == ["in-sample", "held out"]
    assert opt["verdict"]["overall"]["verdict"] in ("likely overfit", "inconclusive", "no sign of overfitting")
    assert set(opt["verdict"]["symbols"]) == {"SPY", "QQQ"}
    wf = json.loads((source_runs["walkforward"] / "summary.json").read_text())
    assert wf["headline"]["window"] == "out-of-sample stitched" and "verdict" in wf
    bt = json.loads((source_runs["backtest"] / "summary.json").read_text())
    assert bt["headline"]["window"] == "full history" and "verdict" not in bt


def test_a_recorded_total_return_basis_is_shown_and_a_missing_one_is_price() -> None:
    summary = {
        "kind": "backtest",
        "metrics": {"SPY": {"total_return": 1.0}},
        "period": {"SPY": {"first": "2012-01-03 00:00:00+00:00", "last": "2020-12-31 00:00:00+00:00"}},
    }
    assert run_headline(summary)["returns_basis"] == "price"
    line = sentence(windows(summary)[0], run_headline(summary | {"returns_basis": "total"})["returns_basis"])
    assert line.startswith("full history 2012-01-03..2020-12-31, total returns: total return 100.00%")


def test_optimize_cli_page_and_tearsheet_agree_and_say_which_window(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli,
        [
            "optimize",
            "-s",
            "sma_cross",
            "--symbols",
            "SPY",
            "--grid",
            "fast=10:40:10,slow=50:200:50",
            "--holdout",
            "0.3",
            "--top",
            "3",
            "--start",
            START,
            "--reports",
            str(tmp_path),
        ],
    )
    assert out.exit_code == 0, out.output
    run = next(p for p in tmp_path.iterdir() if p.name.startswith("optimize-"))
    summary = json.loads((run / "summary.json").read_text())
    best_total = summary["best"]["metrics_mean"]["total_return"]
    is_text = f"{best_total * 100:,.2f}%"
    headline = next(x for x in out.output.splitlines() if x.startswith("Headline "))
    assert headline.startswith("Headline in-sample 2012-01-03..") and "price returns" in headline
    assert f"total return {is_text}" in headline
    assert re.search(r"^\s+held out after \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d, price returns", out.output, re.M)
    verdict = next(x for x in out.output.splitlines() if x.startswith("Verdict: "))
    assert verdict[len("Verdict: ") :] == summary["verdict"]["overall"]["sentence"]
    assert re.match(r"Verdict: (likely overfit|inconclusive|no sign of overfitting): (PBO|DSR|holdout)", verdict)

    page = (run / "report.html").read_text()
    assert headline[len("Headline ") :] in page.replace("&#x27;", "'")
    assert summary["verdict"]["overall"]["sentence"] in page
    assert "Equity and drawdown: full history, price returns" in page
    # the Performance table shows the same in-sample number, labelled, next to the full history
    html_table = "<table" + page.split('id="performance"')[1].split("<table", 1)[1].split("</table>")[0] + "</table>"
    perf = pd.read_html(io.StringIO(html_table))[0]
    perf = perf[perf["series"] == "SPY"].reset_index(drop=True)
    assert list(perf["window"].str.split().str[0]) == ["in-sample", "full"]
    assert float(perf.loc[0, "total_return"].rstrip("%")) / 100 == pytest.approx(best_total, abs=5e-4)
    assert perf.loc[1, "window"].startswith("full history")
    tear = (run / "tearsheet.html").read_text()
    assert "full history, price returns" in tear and "(matched dates)" not in tear
    # the tearsheet's CAGR is the page's full-history CAGR (QuantStats no longer starts at the first trade)
    found = re.search(r"CAGR﹪</td><td>([-\d.]+)%</td><td>([-\d.]+)%", tear)
    assert found, "no CAGR row in the tearsheet"
    page_cagr = float(perf.loc[1, "cagr"].rstrip("%"))
    assert float(found.group(2)) == pytest.approx(page_cagr, abs=0.06)


def test_compare_ranks_in_and_out_of_sample_curves_separately(runs: dict[str, Path]) -> None:  # noqa: F811
    ids = [runs["optimize"].name, runs["walkforward"].name]
    result = compare(ids, metric="sharpe")
    assert set(result.table["sample"]) == {"in-sample winner", "out-of-sample"}
    assert set(result.best_by_sample) == {"in-sample winner", "out-of-sample"}
    assert result.best_row is not None and result.best_row["sample"] == "out-of-sample"
    assert any("mix curves of different samples" in w for w in result.warnings)
    out = CliRunner().invoke(cli, ["compare", *ids])
    assert out.exit_code == 0, out.output
    assert "Best by sharpe among in-sample winner runs" in out.output
    assert "Best by sharpe among out-of-sample runs" in out.output
    assert "\nBest by sharpe: " not in out.output
    page = result.html.read_text()
    assert "among out-of-sample runs" in page and "(out-of-sample)" in page


def test_runs_basis_column_names_window_and_basis(source_runs: dict[str, Path]) -> None:  # noqa: F811
    from quantlab.reports import list_runs

    infos = {
        i.kind + ("-tpe" if "tpe" in str(i.extra) else ""): i
        for i in list_runs(next(iter(source_runs.values())).parent)
    }
    assert infos["backtest"].basis == "full history, price"
    assert infos["walkforward"].basis == "out-of-sample stitched, price"
    assert {i.basis for i in infos.values() if i.kind == "optimize"} == {"in-sample, price"}


def test_build_of_an_old_run_without_headline_fields(runs: dict[str, Path]) -> None:  # noqa: F811
    path = runs["backtest"]
    summary = json.loads((path / "summary.json").read_text())
    summary.pop("headline")
    (path / "summary.json").write_text(json.dumps(summary))
    outcome = build(path, tearsheet=False)
    assert outcome.ok and "full history" in outcome.pages["report"].read_text()


def test_walkforward_headline_ends_at_the_last_bar(source_runs: dict[str, Path]) -> None:  # noqa: F811
    wf = json.loads((source_runs["walkforward"] / "summary.json").read_text())
    equity = pd.read_csv(source_runs["walkforward"] / "equity.csv", index_col=0)
    assert wf["headline"]["last"] == equity.index[-1][:10]
    assert wf["headline"]["first"] <= equity.index[0][:10]
