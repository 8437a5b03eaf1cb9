"""Options shared by the research commands (data window, costs, sizing, output)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from quantlab.cli._format import PCT_METRICS, fmt, table
from quantlab.engine.settings import US_REG_FEES, Costs, SimConfig, parse_sizing
from quantlab.errors import ConfigError
from quantlab.runspec import RunSpec, SearchSpec

__all__ = ["PCT_METRICS", "fmt", "table"]  # re-exported: the command modules import them from here

F = Callable[..., Any]


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


data_options = _stack(
    click.option(
        "--strategy",
        "-s",
        required=True,
        help="Strategy name (see `quantlab strategies`), module path or .py file.",
    ),
    click.option("--symbols", required=True, help="Comma-separated symbols, e.g. SPY,QQQ."),
    click.option("--interval", default="1d", show_default=True, help="Bar interval stored for the symbols."),
    click.option("--start", default=None, help="First date (inclusive), e.g. 2010-01-01."),
    click.option("--end", default=None, help="Last date (inclusive)."),
    click.option(
        "--store",
        default=None,
        type=click.Path(dir_okay=False),
        help="HDF5 store (default data/market.h5 or $QUANTLAB_STORE).",
    ),
    click.option(
        "--adjust",
        is_flag=True,
        default=False,
        help="Back-adjust as-traded (raw) bars for their splits instead of refusing them.",
    ),
    click.option(
        "--returns",
        type=click.Choice(["price", "total"]),
        default="price",
        show_default=True,
        help="price: stored OHLC (dividends left out); total: scaled by adj_close (dividends reinvested).",
    ),
    click.option(
        "--reports",
        default=None,
        type=click.Path(file_okay=False),
        help="Reports folder (default reports/ or $QUANTLAB_REPORTS).",
    ),
)

search_options = _stack(
    click.option(
        "--params",
        "-p",
        default=None,
        help="Fixed values for parameters not in the grid, e.g. atr_mult=3 (exit rules too: sl_stop=0.03).",
    ),
    click.option(
        "--exits",
        default=None,
        help="Exit and entry rules to search, grid syntax: "
        '"sl_stop=0.02:0.10:0.01,tp_stop=0.05:0.30:0.05" (sl_stop, tp_stop, sl_trail, max_hold, '
        "entry_limit, limit_expiry, limit_ticks; a bare name searches its default grid).",
    ),
    click.option(
        "--metric",
        "-m",
        default="sharpe",
        show_default=True,
        help="Ranking metric (mean over symbols).",
    ),
    click.option(
        "--constraint",
        "constraints",
        multiple=True,
        help='Per-symbol filter, e.g. "max_drawdown>-0.25" (repeatable).',
    ),
    click.option(
        "--method",
        default="grid",
        show_default=True,
        type=click.Choice(["grid", "tpe"]),
        help="Grid search or optuna TPE.",
    ),
    click.option("--seed", default=7, show_default=True, type=int, help="TPE sampler seed."),
)

report_option = click.option(
    "--report",
    "report",
    default="full",
    show_default=True,
    type=click.Choice(["full", "charts", "none"]),
    help="Pages to write: plotly page and QuantStats tearsheet, plotly only, or none.",
)


def print_report(outcome: Any) -> None:
    """The report pages a run wrote (and anything that failed while writing them)."""
    if outcome is None:
        return
    for line in outcome.describe():
        click.secho(line, fg="red" if line.startswith("FAILED") else None)


sim_options = _stack(
    click.option("--cash", default=100_000.0, show_default=True, type=float, help="Initial cash."),
    click.option(
        "--fees",
        "fee_model",
        default="ib",
        show_default=True,
        type=click.Choice(["ib", "percent"]),
        help="ib: IB fixed ($0.005/share, $1 min, 1% max); percent: --fee-pct of trade value.",
    ),
    click.option(
        "--fee-pct",
        default=0.0,
        show_default=True,
        type=float,
        help="Percent model: fee as a fraction (0.001 = 10 bps).",
    ),
    click.option("--per-share", default=0.005, show_default=True, type=float, help="IB model: USD per share."),
    click.option(
        "--min-fee",
        default=1.0,
        show_default=True,
        type=float,
        help="IB model: minimum USD per order.",
    ),
    click.option(
        "--max-fee-pct",
        default=0.01,
        show_default=True,
        type=float,
        help="IB model: cap as a fraction of trade value.",
    ),
    click.option(
        "--slippage-bps",
        default=1.0,
        show_default=True,
        type=float,
        help="Slippage per fill in basis points.",
    ),
    click.option(
        "--half-spread-bps",
        default=0.0,
        show_default=True,
        type=float,
        help="Half the bid-ask spread, paid on every fill (bps).",
    ),
    click.option(
        "--spread",
        "spread",
        default=None,
        help="Per-symbol full bid-ask spread in bps, e.g. SPY:1,IWM:3 (half is paid per fill).",
    ),
    click.option(
        "--sec-fee",
        default=None,
        type=float,
        help="SEC Section 31 fee on sells as a fraction of notional (0.0000278 = $27.80 per million).",
    ),
    click.option("--taf", default=None, type=float, help="FINRA TAF per share sold (e.g. 0.000166)."),
    click.option("--taf-max", default=None, type=float, help="FINRA TAF cap per trade in USD (default 8.30)."),
    click.option(
        "--us-fees",
        is_flag=True,
        help="Charge the documented US regulatory fees on sells (SEC fee and FINRA TAF; see docs/research.md).",
    ),
    click.option(
        "--borrow-rate",
        default=0.0,
        show_default=True,
        type=float,
        help="Annual short borrow rate, charged each bar on the short notional (0.03 = 3%).",
    ),
    click.option(
        "--sizing",
        default="all",
        show_default=True,
        help="all | fraction:F | cash:AMOUNT | vol_target:ANNUAL_VOL (e.g. vol_target:0.15).",
    ),
    click.option(
        "--fractional",
        is_flag=True,
        help="Allow fractional shares (default: whole shares, as IB fills stocks).",
    ),
    click.option(
        "--vol-window",
        default=20,
        show_default=True,
        type=int,
        help="Bars for the realised volatility of vol_target sizing.",
    ),
)


def build_sim_config(opts: dict[str, Any]) -> SimConfig:
    """SimConfig from the parsed ``sim_options`` (popped from ``opts``)."""
    model = opts.pop("fee_model")
    costs = Costs(
        model="ib_fixed" if model == "ib" else "percent",
        per_share=opts.pop("per_share"),
        min_fee=opts.pop("min_fee"),
        max_pct=opts.pop("max_fee_pct"),
        pct_fee=opts.pop("fee_pct"),
        slippage_bps=opts.pop("slippage_bps"),
        half_spread_bps=opts.pop("half_spread_bps"),
        spread_bps=parse_spreads(opts.pop("spread")),
        borrow_rate=opts.pop("borrow_rate"),
        **_reg_fees(opts),
    )
    sizing = parse_sizing(
        opts.pop("sizing"),
        whole_shares=not opts.pop("fractional"),
        vol_window=opts.pop("vol_window"),
    )
    return SimConfig(init_cash=opts.pop("cash"), costs=costs, sizing=sizing)


def _reg_fees(opts: dict[str, Any]) -> dict[str, float]:
    fees = dict(US_REG_FEES) if opts.pop("us_fees") else {}
    for flag, name in (("sec_fee", "sec_fee_rate"), ("taf", "taf_per_share"), ("taf_max", "taf_max")):
        value = opts.pop(flag)
        if value is not None:
            fees[name] = value
    return fees


def parse_spreads(text: str | None) -> dict[str, float]:
    """``"SPY:1,IWM:3"`` -> {"SPY": 1.0, "IWM": 3.0} (bps)."""
    out: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        symbol, sep, bps = item.partition(":")
        try:
            out[symbol.strip()] = float(bps)
        except ValueError:
            raise ConfigError(
                "malformed --spread item", found=repr(item), fix="write SYMBOL:BPS items, e.g. SPY:1,IWM:3"
            ) from None
        if not sep or not symbol.strip():
            raise ConfigError(
                "malformed --spread item", found=repr(item), fix="write SYMBOL:BPS items, e.g. SPY:1,IWM:3"
            )
    return out


def build_run_spec(opts: dict[str, Any]) -> RunSpec:
    """RunSpec from the parsed ``data_options``, ``sim_options`` and ``report_option``
    (popped from ``opts``). Progress bars show when stderr is a terminal."""
    sim = build_sim_config(opts)
    data = {k: opts.pop(k) for k in ("interval", "start", "end", "store", "adjust", "returns", "reports")}
    return RunSpec(opts.pop("strategy"), opts.pop("symbols"), sim=sim, report=opts.pop("report"), **data)


def build_search_spec(opts: dict[str, Any]) -> SearchSpec:
    """SearchSpec from ``--grid``, the parsed ``search_options``, ``--trials`` and
    ``--exits`` (and optimize's ``--study``/``--storage``), popped from ``opts``."""
    return SearchSpec(
        grid=opts.pop("grid"),
        params=opts.pop("params"),
        metric=opts.pop("metric"),
        constraints=tuple(opts.pop("constraints")),
        method=opts.pop("method"),
        trials=opts.pop("trials"),
        seed=opts.pop("seed"),
        study=opts.pop("study", None),
        storage=opts.pop("storage", None),
        exits=opts.pop("exits", None),
    )


def print_short_samples(summary: dict[str, Any]) -> None:
    """One warning line per window whose annualised numbers come from under a year of bars,
    and one per setting given a value that cannot change the numbers (an inert setting)."""
    for label, note in (summary.get("short_sample") or {}).items():
        click.secho(f"warning ({label}): {note}", fg="yellow")
    for name, note in (summary.get("inert_settings") or {}).items():
        click.secho(f"warning (--{name.replace('_', '-')}): {note}", fg="yellow")
