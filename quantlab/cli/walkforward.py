"""``quantlab walkforward``: optimise in-sample, trade out of sample, fold after fold."""

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
from quantlab.runs.headline import returns_basis


@click.command("walkforward")
@data_options
@click.option(
    "--grid",
    "-g",
    default=None,
    help='Grid searched in every fold, e.g. "fast=5:100:5,slow=10:250:10".',
)
@click.option("--train", default="2y", show_default=True, help="Training span per fold (2y, 18m, 26w, 90d).")
@click.option("--test", default="6m", show_default=True, help="Test span per fold.")
@click.option("--anchored", is_flag=True, help="Expanding training windows from the first bar.")
@click.option("--embargo", default="0d", show_default=True, help="Gap between training end and test start.")
@search_options
@click.option(
    "--trials",
    default=100,
    show_default=True,
    type=int,
    help="TPE trials per fold (fold k uses seed + k).",
)
@sim_options
@report_option
@json_option
@cluster_option
@resume_option
def walkforward(**opts: Any) -> None:
    """Walk a strategy forward: per fold, choose parameters in-sample and trade them out of sample."""
    from quantlab.engine.backends import make_backend, use_backend
    from quantlab.optimizer.folds import WalkForwardWindows
    from quantlab.optimizer.walkforward import walkforward_run

    run, search = build_run_spec(opts), build_search_spec(opts)
    layout = WalkForwardWindows(opts["train"], opts["test"], opts["embargo"], opts["anchored"])
    with use_backend(make_backend(opts["cluster"], opts["resume"])):
        result = walkforward_run(run, search, layout)
    if opts["as_json"]:
        emit(result, folds=result.folds, oos_metrics=result.oos_metrics.reset_index())
        return
    print_walkforward(result)
    print_report(result.report)


def print_walkforward(result: Any) -> None:
    s = result.summary
    metric = result.metric
    click.secho(
        f"{result.spec.name} walk-forward on {', '.join(result.inputs.symbols)}: {s['n_folds']} folds, "
        f"{s['walkforward']['candidates_per_fold']:,} candidates per fold",
        bold=True,
    )
    params = list(result.spec.param_names)
    name = metric if f"is_{metric}" in result.folds else "sharpe"
    rows = result.folds.assign(
        test=lambda f: (
            f["test_start"].dt.strftime("%Y-%m-%d")
            + ".."
            + (f["test_end"] - __import__("pandas").Timedelta(days=1)).dt.strftime("%Y-%m-%d")
        )
    )
    click.echo(
        table(
            rows.to_dict("records"),
            [
                "fold",
                "symbol",
                "test",
                *params,
                f"is_{name}",
                f"oos_{name}",
                "oos_total_return",
                "oos_trades",
                "oos_rank",
            ],
        )
    )
    click.echo(
        f"\nStitched out of sample (one account, parameters switching per fold; vectorbt replay; "
        f"{returns_basis(s)} returns):"
    )
    oos = result.oos_metrics.reset_index().to_dict("records")
    click.echo(table(oos, ["symbol", "total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "fees"]))
    for symbol, eff in result.efficiency.items():
        ov = s["walkforward"]["overfit"][symbol]
        pbo = f"{ov['pbo']:.2f}" if ov["pbo"] is not None else "n/a"
        click.echo(
            f"  {symbol}: efficiency {fmt(eff['efficiency'])} ({eff['metric']} OOS/IS), "
            f"annualised-return WFE {fmt(eff['annualised_return'])}; walk-forward PBO {pbo} "
            f"(median OOS rank {ov['median_oos_rank']:.2f}); mean in-sample DSR {fmt(ov['mean_is_dsr'])}"
        )
    click.echo("\nParameter drift (chosen per fold):")
    drift = s["walkforward"]["parameter_drift"]
    click.echo(
        table(
            [{"param": k, **v} for k, v in drift.items()],
            ["param", "mean", "std", "min", "max", "changes"],
        )
    )
    check = s["replay_check"]
    if not check["ok"]:
        click.secho(
            f"warning: simulator and vectorbt differ by {check['max_relative_difference']:.2e}",
            fg="yellow",
            err=True,
        )
    print_short_samples(s)
    click.echo("")
    echo_headline(s)
    echo_verdict(s)
    if result.path is not None:
        click.echo(f"\nResults: {result.path}")
