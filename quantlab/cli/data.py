"""``quantlab data``: list, import, fetch, update and check market data.

Each command parses options, calls one function of :mod:`quantlab.data` and prints
the result; errors are :class:`~quantlab.errors.QuantlabError` and become a red
one-paragraph message with exit code 1 (see ``quantlab.cli``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

_STORE_HELP = "HDF5 store (default: $QUANTLAB_STORE or data/market.h5)."
_DATE_FORMAT_HELP = (
    "strftime format of the file's dates, e.g. '%d/%m/%Y' (day first) or '%m/%d/%Y %H:%M'; "
    "needed when dates could be read day-first or month-first."
)
_INTERVALS = ["1m", "2m", "5m", "15m", "30m", "1h", "60m", "90m", "1d", "1wk", "1mo"]


def _store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", "store", type=click.Path(dir_okay=False), default=None, help=_STORE_HELP)(func)


def _store(ctx: click.Context, store: str | None) -> str | None:
    return store or (ctx.obj or {}).get("store")


@click.group("data")
@_store_option
@click.pass_context
def data(ctx: click.Context, store: str | None) -> None:
    """Market data: list, import, fetch, update and check the HDF5 store."""
    ctx.ensure_object(dict)
    ctx.obj["store"] = store


def _when(stamp: Any, interval: str) -> str:
    if stamp is None:
        return "-"
    return str(stamp.strftime("%Y-%m-%d" if interval in ("1d", "1wk", "1mo") else "%Y-%m-%d %H:%M UTC"))


@data.command("list")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def list_(ctx: click.Context, store: str | None, as_json: bool) -> None:
    """Show what is stored: symbol, interval, first/last bar, rows, adjustment."""
    from quantlab.data import info
    from quantlab.paths import store_path

    series = info(_store(ctx, store))
    if as_json:
        rows = [{**s.__dict__, "first": str(s.first), "last": str(s.last), "columns": list(s.columns)} for s in series]
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(f"store: {store_path(_store(ctx, store))}")
        header = f"{'symbol':<8} {'interval':<8} {'first':<20} {'last':<20} {'rows':>8}  {'adjustment':<12} source"
        click.echo(header)
        for s in series:
            if s.damaged:
                click.secho(f"{s.symbol:<8} {s.interval:<8} DAMAGED: {s.damaged}", fg="red")
                continue
            click.echo(
                f"{s.symbol:<8} {s.interval:<8} {_when(s.first, s.interval):<20} {_when(s.last, s.interval):<20} "
                f"{s.rows:>8}  {s.adjustment:<12} {s.source}"
            )
        if not series:
            click.echo("(empty)")
    _fail_if_damaged(series)


def _fail_if_damaged(series: list[Any]) -> None:
    """Listing succeeds for the readable series, but damage is an error (exit 1)."""
    from quantlab.data._h5 import DAMAGE_FIX
    from quantlab.errors import StoreError

    damaged = [f"{s.symbol} {s.interval}" for s in series if s.damaged]
    if damaged:
        raise StoreError(
            f"{len(damaged)} of {len(series)} series cannot be read: the store is damaged there",
            found=", ".join(damaged),
            fix=DAMAGE_FIX,
        )


@data.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--symbol", required=True, help="Ticker to store the bars under.")
@click.option(
    "--interval",
    type=click.Choice(_INTERVALS),
    default=None,
    help="Bar interval (default: inferred; 1d for date-only files).",
)
@click.option(
    "--tz",
    default="America/New_York",
    show_default=True,
    help="Time zone of naive intraday stamps.",
)
@click.option(
    "--label",
    type=click.Choice(["start", "end"]),
    default="start",
    show_default=True,
    help="Stamps mark the bar start or its end (end: shifted back one interval).",
)
@click.option(
    "--adjustment",
    type=click.Choice(["raw", "split", "total_return"]),
    default=None,
    help="Default: split if the file has Adj Close (Yahoo), else raw.",
)
@click.option("--date-format", "date_format", default=None, help=_DATE_FORMAT_HELP)
@click.option(
    "--actions",
    type=click.Path(dir_okay=False),
    default=None,
    help="Corporate actions CSV (Date,Dividend,Split Ratio): back-adjust as-traded bars before storing "
    "(splits; with --adjustment total_return also dividends).",
)
@click.option("--sort", is_flag=True, help="Sort rows by time.")
@click.option(
    "--dedupe",
    type=click.Choice(["first", "last"]),
    default=None,
    help="Keep the first or last copy (file order) of repeated time stamps.",
)
@click.option("--drop-empty", is_flag=True, help="Skip rows whose OHLCV cells are all empty.")
@click.option("--replace", is_flag=True, help="Replace the stored series instead of merging.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: in a terminal).")
@_store_option
@click.pass_context
def import_(
    ctx: click.Context,
    file: str,
    symbol: str,
    interval: str | None,
    tz: str,
    label: str,
    adjustment: str | None,
    date_format: str | None,
    actions: str | None,
    sort: bool,
    dedupe: str | None,
    drop_empty: bool,
    replace: bool,
    progress: bool | None,
    store: str | None,
) -> None:
    """Import a Yahoo-style or generic OHLCV CSV FILE."""
    from quantlab._startup.progress import Progress
    from quantlab.data import import_csv

    with Progress(3, f"import {symbol}", "step", progress) as bar:
        result = import_csv(
            file,
            symbol,
            interval=interval,
            store=_store(ctx, store),
            tz=tz,
            label=label,
            adjustment=adjustment,
            sort=sort,
            dedupe=dedupe or False,
            drop_empty=drop_empty,
            mode="replace" if replace else "merge",
            date_format=date_format,
            actions=actions,
            on_step=bar.update_to,
        )
    verb = "created" if result.created else ("added" if result.changed else "unchanged")
    click.echo(
        f"{result.symbol} {result.interval}: {verb}, +{result.added} bar(s), {result.rewritten} rewritten, {result.rows_after} stored"
    )
    if label == "start":
        _warn_if_end_labelled(result.symbol, result.interval, _store(ctx, store))


def _warn_if_end_labelled(symbol: str, interval: str, store: str | None) -> None:
    """Regular-hours bars stamped 16:00 and never 09:30 were labelled by their end time."""
    from quantlab.data import load
    from quantlab.data._schema import is_intraday

    if not is_intraday(interval):
        return
    local = load(symbol, interval=interval, store=store).index.tz_convert("America/New_York")
    minutes = local.hour * 60 + local.minute
    if (minutes == 16 * 60).any() and not (minutes == 9 * 60 + 30).any():
        click.secho(
            f"warning: {symbol} {interval} has bars stamped 16:00 New York time and none at 09:30: the file probably "
            "labels bars by their end time. Re-import with --label end --replace so each bar is stamped by its start.",
            fg="yellow",
        )


def _report_fetch(results: list[Any]) -> None:
    from quantlab.errors import FetchError

    for r in results:
        line = f"{r.symbol} {r.interval}: {r.status}"
        if r.status != "failed":
            line += f", +{r.added} bar(s), {r.rows} stored"
        click.secho(
            line + (f" - {r.message}" if r.message and r.status != "failed" else ""),
            fg="red" if r.status == "failed" else None,
        )
    failed = [r for r in results if r.status == "failed"]
    if failed:
        details = " | ".join(f"{r.symbol}: {r.message}" for r in failed)
        raise FetchError(
            f"{len(failed)} of {len(results)} series failed",
            found=details,
            fix="see the messages above; stored bars of other symbols were kept",
        )


@data.command("fetch")
@click.argument("symbols", nargs=-1, required=True)
@click.option("--start", default=None, help="First date (inclusive), e.g. 2010-01-01.")
@click.option("--end", default=None, help="Last date (inclusive; default: today).")
@click.option("--interval", type=click.Choice(_INTERVALS), default="1d", show_default=True)
@click.option(
    "--auto-adjust/--no-auto-adjust",
    default=False,
    show_default=True,
    help="yfinance auto_adjust: total-return adjusted OHLC (True) or split-adjusted OHLC + adj_close (False).",
)
@click.option("--replace", is_flag=True, help="Download everything again and replace stored series.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_store_option
@click.pass_context
def fetch_(
    ctx: click.Context,
    symbols: tuple[str, ...],
    start: str | None,
    end: str | None,
    interval: str,
    auto_adjust: bool,
    replace: bool,
    retries: int,
    progress: bool,
    store: str | None,
) -> None:
    """Download SYMBOLS from Yahoo Finance (resumes: stored bars are not downloaded again)."""
    from quantlab.data import FetchOptions, fetch

    results = fetch(
        list(symbols),
        start=start,
        end=end,
        interval=interval,
        store=_store(ctx, store),
        replace=replace,
        progress=progress,
        options=FetchOptions(auto_adjust=auto_adjust, retries=retries),
    )
    _report_fetch(results)


@data.command("update")
@click.argument("symbols", nargs=-1)
@click.option(
    "--interval",
    type=click.Choice(_INTERVALS),
    default=None,
    help="Only this interval (default: all stored).",
)
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True)
@click.option("--progress/--no-progress", default=True, show_default=True)
@_store_option
@click.pass_context
def update_(
    ctx: click.Context,
    symbols: tuple[str, ...],
    interval: str | None,
    retries: int,
    progress: bool,
    store: str | None,
) -> None:
    """Fetch bars after the last stored one for SYMBOLS (default: every stored series)."""
    from quantlab.data import FetchOptions, update

    results = update(
        list(symbols) or None,
        interval=interval,
        store=_store(ctx, store),
        progress=progress,
        options=FetchOptions(retries=retries),
    )
    _report_fetch(results)


@data.command("check")
@click.argument("symbols", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Check a CSV file as it is instead of the store.",
)
@click.option(
    "--interval",
    type=click.Choice(_INTERVALS),
    default=None,
    help="Store: only this interval; file: bar interval (default inferred).",
)
@click.option("--tz", default="America/New_York", show_default=True, help="File: time zone of naive stamps.")
@click.option(
    "--label",
    type=click.Choice(["start", "end"]),
    default=None,
    help=(
        "File: stamps mark bar starts (default) or ends. Report times are shown the same way "
        "(store default: as the source labelled them)."
    ),
)
@click.option("--date-format", "date_format", default=None, help="File: " + _DATE_FORMAT_HELP)
@click.option(
    "--calendar",
    default="XNYS",
    show_default=True,
    help="Exchange calendar for session checks ('none' to skip).",
)
@click.option("--strict", is_flag=True, help="Exit 1 on warnings too.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@_store_option
@click.pass_context
def check_(
    ctx: click.Context,
    symbols: tuple[str, ...],
    file: str | None,
    interval: str | None,
    tz: str,
    label: str | None,
    date_format: str | None,
    calendar: str,
    strict: bool,
    as_json: bool,
    store: str | None,
) -> None:
    """Check stored SYMBOLS (default: all) or a CSV --file. Exit 1 on errors (--strict: on warnings)."""
    from quantlab.data import check_file, check_store

    cal = None if calendar.lower() == "none" else calendar
    if date_format and not file:
        raise click.UsageError("--date-format applies to --file only (stored bars have typed time stamps)")
    if file:
        reports = [
            check_file(file, interval=interval, tz=tz, label=label or "start", calendar=cal, date_format=date_format)
        ]
    else:
        reports = check_store(
            list(symbols) or None,
            interval=interval,
            store=_store(ctx, store),
            label=label,
            calendar=cal,
        )
    errors = sum(len(r.errors) for r in reports)
    warnings = sum(len(r.warnings) for r in reports)
    failed = errors > 0 or (strict and warnings > 0)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "errors": errors,
                    "warnings": warnings,
                    "exit_code": int(failed),
                    "reports": [r.to_dict() for r in reports],
                },
                indent=2,
            )
        )
    else:
        for r in reports:
            click.secho(r.format_text(), fg="red" if r.errors else None)
        click.echo(f"{len(reports)} series checked: {errors} error finding(s), {warnings} warning finding(s)")
    if failed:
        ctx.exit(1)
