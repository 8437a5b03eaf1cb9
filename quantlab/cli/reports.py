"""``quantlab report``, ``quantlab runs`` and ``quantlab compare``: pages of past runs."""

from __future__ import annotations

import json
from typing import Any

import click

from quantlab.cli._format import terminal_width
from quantlab.cli._options import table

#: How ``quantlab runs`` fits a narrow terminal: cut these columns first, then leave these out.
RUNS_SHRINK = ("params", "symbols", "strategy", "basis")
RUNS_DROP = ("params", "date", "cagr", "max_drawdown", "symbols", "strategy", "basis")

_reports_option = click.option(
    "--reports",
    default=None,
    type=click.Path(file_okay=False),
    help="Reports folder (default reports/ or $QUANTLAB_REPORTS).",
)


@click.command("report")
@click.argument("run_id")
@_reports_option
@click.option(
    "--benchmark", default="SPY", show_default=True, help="Benchmark symbol from the local store ('' for none)."
)
@click.option("--store", default=None, type=click.Path(dir_okay=False), help="HDF5 store holding the benchmark.")
@click.option("--no-tearsheet", is_flag=True, help="Skip the QuantStats tearsheet (faster).")
def report(run_id: str, reports: str | None, benchmark: str, store: str | None, no_tearsheet: bool) -> None:
    """Rebuild the pages of a past run (RUN_ID, or the path of its folder).

    Writes report.html (interactive charts) and tearsheet.html (QuantStats) into the run
    folder and refreshes reports/index.html. A QuantStats failure is reported but the
    charts page is still written (exit code 0).
    """
    from quantlab.reports import build

    outcome = build(run_id, reports=reports, benchmark=benchmark or None, store=store, tearsheet=not no_tearsheet)
    click.secho(
        f"{outcome.kind} {outcome.run_id}: {len(outcome.charts)} charts in {outcome.seconds.get('total', 0.0):.1f}s",
        bold=True,
    )
    for name, path in outcome.pages.items():
        click.echo(f"  {name}: {path}")
    if outcome.index is not None:
        click.echo(f"  index: {outcome.index}")
    for warning in outcome.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for what, why in outcome.failures.items():
        click.secho(f"FAILED {what}: {why}", fg="red", err=True)
    if "tearsheet" in outcome.failures:
        click.secho("The charts page was written without the tearsheet; see docs/reports.md.", fg="yellow", err=True)


@click.command("runs")
@_reports_option
@click.option(
    "--kind", type=click.Choice(["backtest", "optimize", "walkforward"]), default=None, help="Only runs of this kind."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per run) instead of a table.")
def runs(reports: str | None, kind: str | None, as_json: bool) -> None:
    """List past runs, newest first: id, date, strategy, symbols, key metrics."""
    from quantlab.paths import reports_dir
    from quantlab.reports import list_runs, runs_frame

    infos = list_runs(reports, kind)
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], indent=2, default=str))
        return
    base = reports_dir(reports)
    if not infos:
        click.echo(f"No runs in {base}. Create one with `quantlab backtest` or `quantlab optimize`.")
        return
    frame = runs_frame(infos)
    click.echo(
        table(frame.to_dict("records"), list(frame.columns), width=terminal_width(), shrink=RUNS_SHRINK, drop=RUNS_DROP)
    )
    click.echo(f"\n{len(infos)} runs in {base}; index: {base / 'index.html'}")


@click.command("compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option(
    "--metric",
    "-m",
    default="sharpe",
    show_default=True,
    help="Metric that names the best: total_return, cagr, sharpe, sortino, max_drawdown, calmar, volatility.",
)
@_reports_option
def compare(run_ids: tuple[str, ...], metric: str, reports: str | None) -> None:
    """Compare runs side by side and name the best by --metric.

    Writes reports/compare-<hash>/compare.html (overlaid equity curves, table) and compare.csv.
    """
    from quantlab.reports import compare as run_compare

    result = run_compare(list(run_ids), metric=metric, reports=reports)
    columns = [
        "run_id",
        "symbol",
        "sample",
        "interval",
        "first",
        "last",
        "total_return",
        "cagr",
        "sharpe",
        "max_drawdown",
    ]
    frame = result.table
    groups = list(dict.fromkeys(frame["sample"]))
    for group in groups:
        rows: list[dict[str, Any]] = frame[frame["sample"] == group].to_dict("records")
        if len(groups) > 1:
            click.secho(f"\n{group} ({rows[0]['window']}):", bold=True)
        click.echo(table(rows, columns))
    best = result.best_row
    if len(groups) > 1:
        click.echo("")
        for group, pos in result.best_by_sample.items():
            row = frame.iloc[pos]
            click.secho(
                f"Best by {metric} among {group} runs: {row['run_id']} ({row['symbol']}), {metric} = {row[metric]:.4g}",
                bold=True,
            )
    elif best is None:
        click.secho(f"\nNo run has a finite {metric}.", fg="yellow")
    else:
        click.secho(
            f"\nBest by {metric}: {best['run_id']} ({best['symbol']}), {metric} = {best[metric]:.4g}", bold=True
        )
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow")
    click.echo(f"Saved to {result.html} and {result.csv}")
