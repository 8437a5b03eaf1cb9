"""``quantlab optimize``: grid or optuna search, ranked, replayed, and checked for overfitting."""

from __future__ import annotations

from typing import Any

import click

from quantlab.cli._cluster import cluster_option, resume_option
from quantlab.cli._json import emit, json_option
from quantlab.cli._labels import echo_headline, echo_verdict
from quantlab.cli._options import (
    build_run_spec,
    build_search_spec,
    data_options,
    fmt,
    print_report,
    print_short_samples,
    report_option,
    search_options,
    sim_options,
    table,
)
from quantlab.runs.headline import FULL, IN_SAMPLE, returns_basis


@click.command("optimize")
@data_options
@click.option(
    "--grid",
    "-g",
    default=None,
    help='Grid, e.g. "fast=5:100:1,slow=10:250:2" (or bounds for TPE).',
)
@search_options
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=int,
    help="Winners to list and replay through vectorbt.",
)
@click.option(
    "--holdout",
    default=0.0,
    show_default=True,
    type=float,
    help="Share of history kept out of the search (by time).",
)
@click.option(
    "--trials",
    default=200,
    show_default=True,
    type=int,
    help="TPE: completed trials wanted in the study.",
)
@click.option(
    "--study",
    default=None,
    help="TPE: study name (default: strategy + config hash, so reruns resume).",
)
@click.option("--storage", default=None, help="TPE: optuna storage URL (default sqlite under reports/).")
@click.option(
    "--blocks",
    "n_blocks",
    default=16,
    show_default=True,
    type=int,
    help="CSCV blocks for PBO (even, 4-20).",
)
@sim_options
@report_option
@json_option
@cluster_option
@resume_option
def optimize(**opts: Any) -> None:
    """Search a strategy's parameters and report the winners honestly."""
    from quantlab.engine.backends import make_backend, use_backend
    from quantlab.optimizer.api import optimize_run

    run, search = build_run_spec(opts), build_search_spec(opts)
    with use_backend(make_backend(opts["cluster"], opts["resume"])):
        result = optimize_run(run, search, top=opts["top"], holdout=opts["holdout"], n_blocks=opts["n_blocks"])
    if opts["as_json"]:
        emit(result, top=result.top, holdout=result.holdout)
        return
    print_optimize(result)
    print_report(result.report)


def print_optimize(result: Any) -> None:
    s = result.summary
    metric = result.metric
    rate = s.get("evaluations_per_second")
    click.secho(
        f"{result.spec.name} on {', '.join(result.inputs.symbols)}: {s['n_combinations']:,} combinations, "
        f"{s['n_passing']:,} pass" + (f", {rate / 1e6:,.0f}M bar-evaluations/s" if rate else ""),
        bold=True,
    )
    study = s.get("study") or {}
    if study.get("resumed_from"):
        click.echo(
            f"Resumed optuna study {study['study']!r} ({study['storage']}): {study['resumed_from']} trials were "
            f"already done, {study['trials'] - study['resumed_from']} run now"
        )
    params = list(result.spec.param_names)
    shown = [metric] + [m for m in ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades") if m != metric]
    passing = result.ranking[result.ranking["passes"]]
    # TPE may propose one parameter set many times: each set is one combination (its first trial)
    unique = passing.drop_duplicates(subset=params)
    rows = unique.head(len(result.top) // max(len(result.inputs.symbols), 1))
    click.echo(f"Top {len(rows)} by {metric} ({IN_SAMPLE}, {returns_basis(s)} returns, mean over symbols):")
    click.echo(table(rows.to_dict("records"), ["rank", *params, *shown]))
    repeats = study.get("repeated_trials", 0)
    if repeats:
        click.echo(
            f"({repeats:,} of {study['trials']:,} trials repeated a parameter set already tried; "
            "each set is listed once)"
        )
    print_short_samples(s)
    check = s["replay_check"]
    status = "ok" if check["ok"] else "MISMATCH"
    click.echo(
        f"\nvectorbt replay of the top {len(rows)}: max relative difference {check['max_relative_difference']:.1e} ({status})"
    )
    if s["nan_combinations"]["count"]:
        click.secho(
            f"{s['nan_combinations']['count']} result rows have NaN metrics: {s['nan_combinations']['by_status']} "
            f"(listed in results.parquet, status column)",
            fg="yellow",
        )
    best = ", ".join(f"{k}={fmt(v)}" for k, v in result.best.items())
    click.secho(f"\nBest: {best}", bold=True)
    if result.holdout is not None:
        click.echo(f"In-sample vs held out (winner, {returns_basis(s)} returns):")
        cols = [
            "symbol",
            f"in_sample_{metric}" if f"in_sample_{metric}" in result.holdout else "in_sample_sharpe",
            f"holdout_{metric}" if f"holdout_{metric}" in result.holdout else "holdout_sharpe",
            "in_sample_total_return",
            "holdout_total_return",
            "holdout_percentile",
        ]
        click.echo(table(result.holdout.to_dict("records"), cols))
    click.echo("\nOverfitting (in-sample search):")
    for symbol, stats in result.overfit.items():
        dsr = stats.get("deflated_sharpe", {})
        pbo = stats.get("pbo", {})
        dsr_text = f"{dsr['dsr']:.3f}" if "dsr" in dsr else f"n/a ({dsr.get('error', stats.get('error', ''))})"
        if "pbo" in pbo:
            sampled = pbo["n_splits"] < pbo["n_splits_total"]
            pbo_text = f"{pbo['pbo']:.3f} over {pbo['n_splits']} splits" + (
                f" sampled of {pbo['n_splits_total']} (s.e. {pbo['standard_error']:.3f})" if sampled else ""
            )
        else:
            pbo_text = f"n/a ({pbo.get('error', stats.get('error', ''))})"
        click.echo(f"  {symbol}: deflated Sharpe {dsr_text}; PBO {pbo_text}; trials {stats['n_trials']}")
    click.echo("")
    echo_headline(s)
    echo_verdict(s)
    click.echo(f"The saved equity curve, page and tearsheet show the winner over the {FULL}.")
    if result.path is not None:
        click.echo(f"\nResults: {result.path}")
