"""``quantlab backtest``: one parameter set through vectorbt, saved to reports/."""

from __future__ import annotations

from typing import Any

import click

from quantlab.cli._format import format_column
from quantlab.cli._json import emit, json_option
from quantlab.cli._labels import echo_headline
from quantlab.cli._options import (
    build_run_spec,
    data_options,
    fmt,
    print_report,
    print_short_samples,
    report_option,
    sim_options,
)
from quantlab.errors import ParameterError
from quantlab.runs.headline import FULL, returns_basis


@click.command("backtest")
@data_options
@click.option("--params", "-p", default=None, help="Parameters, e.g. fast=20,slow=50 (others keep defaults).")
@click.option(
    "--shared-cash",
    is_flag=True,
    help="Trade all symbols from one cash account (common timestamps).",
)
@click.option("--exits", default=None, hidden=True)  # optimize's and walkforward's: see _exits_in_params
@sim_options
@report_option
@json_option
def backtest(**opts: Any) -> None:
    """Backtest a strategy with one parameter set and print its key statistics."""
    from quantlab.backtester import backtest_run

    exits = opts.pop("exits")
    if exits is not None:
        _exits_in_params(opts["params"], exits)
    result = backtest_run(build_run_spec(opts), opts["params"], shared_cash=opts["shared_cash"])
    if opts["as_json"]:
        emit(result, metrics=result.metrics.reset_index(names="symbol"))
        return
    params = ", ".join(f"{k}={fmt(v)}" for k, v in result.params.items())
    click.secho(f"{result.spec.name} ({params}) on {', '.join(result.inputs.symbols)}", bold=True)
    echo_headline(result.summary)
    click.echo(f"Per symbol ({FULL}, {returns_basis(result.summary)} returns):")
    metrics = result.metrics
    names = [
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "win_rate",
        "profit_factor",
        "n_trades",
        "exposure",
        "fees",
        "final_value",
    ]
    rows = {name: format_column([metrics.loc[c, name] for c in metrics.index], name) for name in names}
    width = max([len(str(c)) for c in metrics.index] + [len(v) for vals in rows.values() for v in vals]) + 2
    click.echo(" " * 15 + "".join(str(c).rjust(max(width, 12)) for c in metrics.index))
    for name in names:
        click.echo(f"{name:<15}" + "".join(v.rjust(max(width, 12)) for v in rows[name]))
    print_short_samples(result.summary)
    if (metrics["n_orders"] == 0).all():
        click.secho(
            "No order was filled: the strategy never changed its target, or the sizing rule bought 0 whole shares "
            "(try --fractional, more --cash or another --sizing).",
            fg="yellow",
        )
    check = result.summary["replay_check"]
    if not check["ok"]:
        click.secho(
            f"warning: simulator and vectorbt differ by {check['max_relative_difference']:.2e}",
            fg="yellow",
            err=True,
        )
    click.echo(f"\nSaved to {result.path}")
    print_report(result.report)


def _exits_in_params(params: str | None, exits: str) -> None:
    """A backtest takes exit rules as parameters: say so with the command line to type
    (a range keeps its first value) instead of click's "No such option" and a list of
    unrelated flags."""
    single = ",".join(item.split(":")[0].split("|")[0] for item in exits.split(",") if item.strip())
    raise ParameterError(
        "a backtest takes exit rules in --params (--exits is the grid option of optimize and walkforward)",
        found=f"--exits {exits}",
        fix=f"--params {params + ',' if params else ''}{single}; to sweep them, use quantlab optimize --exits",
    )
