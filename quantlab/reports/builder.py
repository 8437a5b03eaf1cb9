"""``build(run)``: the report pages of one run folder, and the reports index.

Writes ``report.html`` (interactive plotly charts, plotly.js embedded) and
``tearsheet.html`` (QuantStats against the benchmark) into the run folder, then
refreshes ``reports/index.html``. A QuantStats or chart failure never stops the build: it
is recorded in the outcome and shown at the top of the page.
"""

from __future__ import annotations

import html
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quantlab._startup.progress import Progress
from quantlab.errors import QuantlabError, ReportError
from quantlab.reports import charts
from quantlab.reports._io import ensure_folder, write_text
from quantlab.reports.benchmark import DEFAULT_BENCHMARK, Benchmark, load_benchmark
from quantlab.reports.metrics import bars_per_year, metrics_table
from quantlab.reports.page import Section, notice_html, render_page, slugify, table_html
from quantlab.reports.tearsheet import (
    TEARSHEET,
    quantstats_version,
    strategy_returns,
    write_tearsheet,
)
from quantlab.runs.artifacts import Run, open_run
from quantlab.runs.headline import equity_window, returns_basis

REPORT = "report.html"
#: Result rows up to which the search charts (heatmap, in-sample vs holdout) are drawn:
#: a streamed sweep's results.parquet (docs/scaling.md) is not read whole for a page.
REPORT_MAX_ROWS = 2_000_000


@dataclass
class ReportOutcome:
    """What :func:`build` wrote and what it could not.

    Attributes:
        run_id, kind, path: the run and its folder.
        pages: page name (``report``, ``tearsheet``) -> file written.
        charts: titles of the charts drawn on ``report.html``, in page order.
        skipped: chart -> why it was not drawn (not applicable or input missing).
        failures: component (``tearsheet`` or a chart) -> what failed.
        warnings: things the reader should know (e.g. no benchmark in the store).
        index: ``reports/index.html`` when it was refreshed.
        seconds: wall time per step (``tearsheet``, ``charts``, ``index``, ``total``).
    """

    run_id: str
    kind: str
    path: Path
    pages: dict[str, Path] = field(default_factory=dict)
    charts: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    index: Path | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every page and chart was written."""
        return not self.failures

    def describe(self) -> list[str]:
        """Human-readable lines for the command line."""
        lines = [f"{name}: {path}" for name, path in self.pages.items()]
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"FAILED {what}: {why}" for what, why in self.failures.items()]
        return lines


def build(
    run: str | os.PathLike[str],
    *,
    reports: str | os.PathLike[str] | None = None,
    benchmark: str | None = DEFAULT_BENCHMARK,
    store: str | os.PathLike[str] | None = None,
    tearsheet: bool = True,
    index: bool = True,
    progress: bool | None = None,
) -> ReportOutcome:
    """Build the report pages of ``run`` (a run folder, or a run id under ``reports``).

    Args:
        run: path to ``reports/<run_id>/`` or the run id.
        reports: reports folder used to resolve a run id (default reports/ or $QUANTLAB_REPORTS).
        benchmark: symbol in the local store to compare with (None: no benchmark).
        store: market-data store holding the benchmark.
        tearsheet: write the QuantStats tearsheet.
        index: refresh ``index.html`` in the run's parent folder.
        progress: a tqdm bar over the steps on stderr (None: only in a terminal).

    Returns:
        The :class:`ReportOutcome`; QuantStats and chart failures are recorded there.

    Raises:
        ReportError: unknown run, missing or unreadable required artifacts, or a run
            folder that cannot be written.
    """
    began = time.perf_counter()
    r = open_run(run, reports)
    with Progress(1 + int(tearsheet) + int(index), f"report {r.run_id}", "step", progress) as bar:
        return _build(r, benchmark, store, tearsheet, index, began, bar)


def _build(
    r: Run, benchmark: str | None, store: Any, tearsheet: bool, index: bool, began: float, bar: Progress
) -> ReportOutcome:
    done = 0
    ensure_folder(r.path)
    outcome = ReportOutcome(r.run_id, r.kind, r.path)
    equity = r.equity()
    if store is None and r.summary.get("store"):
        store = r.summary["store"]  # the store the run read, when it still exists
        if not os.path.exists(store):
            store = None
    bench = _benchmark(r, equity, benchmark, store, outcome)

    t0 = time.perf_counter()
    if tearsheet:
        _tearsheet(r, equity, bench, outcome)
        done += 1
        bar.update_to(done)
    outcome.seconds["tearsheet"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    sections = SECTIONS[r.kind](r, equity, bench, outcome)
    text = render_page(f"{r.strategy} {r.kind}: {r.run_id}", _header(r, equity, outcome), sections, _notices(outcome))
    outcome.pages["report"] = write_text(r.path / REPORT, text)
    outcome.pages = {k: outcome.pages[k] for k in ("report", "tearsheet") if k in outcome.pages}
    outcome.seconds["charts"] = time.perf_counter() - t0
    done += 1
    bar.update_to(done)

    if index:
        from quantlab.reports.index import write_index

        t0 = time.perf_counter()
        outcome.index = write_index(r.path.parent)
        outcome.seconds["index"] = time.perf_counter() - t0
        bar.update_to(done + 1)
    outcome.seconds["total"] = time.perf_counter() - began
    return outcome


# --- inputs -------------------------------------------------------------------------------------


def _benchmark(
    r: Run, equity: pd.DataFrame, symbol: str | None, store: Any, outcome: ReportOutcome
) -> Benchmark | None:
    if not symbol:
        return None
    try:
        basis = str(r.summary.get("returns_basis", "total"))  # same basis as the run's returns
        return load_benchmark(pd.DatetimeIndex(equity.index), symbol, r.interval, store, basis)
    except (QuantlabError, ValueError, KeyError, OSError) as err:
        outcome.warnings.append(f"no benchmark: {symbol} {r.interval} is not available from the store ({err})")
        return None


def _tearsheet(r: Run, equity: pd.DataFrame, bench: Benchmark | None, outcome: ReportOutcome) -> None:
    path = r.path / TEARSHEET
    try:
        returns = strategy_returns(equity, r.strategy)
        title = f"{r.strategy} {r.kind} {r.run_id}: {equity_window(r.summary)}, {returns_basis(r.summary)} returns"
        write_tearsheet(
            returns, None if bench is None else bench.returns, path, title, int(round(bars_per_year(r.interval)))
        )
        outcome.pages["tearsheet"] = path
    except Exception as err:  # noqa: BLE001 - any QuantStats failure is reported, never raised
        path.unlink(missing_ok=True)  # a stale tearsheet would contradict the new page
        outcome.failures["tearsheet"] = f"QuantStats {quantstats_version()} failed: {type(err).__name__}: {err}".strip()


def _chart(outcome: ReportOutcome, title: str, builder: Callable[..., Any], *args: Any, why_none: str = "") -> Any:
    """Run one chart builder; record its title, or why it was skipped or failed."""
    try:
        figure = builder(*args)
    except Exception as err:  # noqa: BLE001 - one broken chart must not cost the whole page
        outcome.failures[title] = f"{type(err).__name__}: {err}"
        return None
    if figure is None:
        outcome.skipped[title] = why_none or "nothing to draw"
        return None
    outcome.charts.append(str(figure.layout.title.text))
    return figure


def _add(
    sections: list[Section],
    outcome: ReportOutcome,
    title: str,
    builder: Callable[..., Any],
    *args: Any,
    note: str = "",
    why_none: str = "",
    table: str = "",
) -> None:
    figure = _chart(outcome, title, builder, *args, why_none=why_none)
    if figure is not None or table:
        sections.append(Section(title, slugify(title), figure=figure, note=note, html=table))


def _bench_equity(equity: pd.DataFrame, bench: Benchmark | None, r: Run) -> pd.Series | None:
    if bench is None:
        return None
    start = r.init_cash or float(equity.iloc[0].mean())
    return bench.equity(start)


def _performance_table(r: Run, equity: pd.DataFrame, bench: Benchmark | None) -> str:
    """Metrics of every equity column over the window equity.csv covers; for an optimisation
    also over its in-sample part (the prefix up to the split, which is exactly the account
    the search ranked: same start, same causal kernel), so the CLI's headline appears here."""
    per_year = bars_per_year(r.interval)
    frame = equity.copy()
    bench_eq = _bench_equity(equity, bench, r)
    if bench_eq is not None and bench is not None:
        frame[f"{bench.symbol} buy & hold"] = bench_eq.to_numpy()
    first, last = str(equity.index[0].date()), str(equity.index[-1].date())
    table = metrics_table(frame, per_year, r.init_cash)
    table.insert(0, "window", f"{equity_window(r.summary)} {first}..{last}")
    table.insert(0, "series", table.index)
    tables = [table]
    is_end = _in_sample_end(r)
    if is_end is not None:
        part = frame.loc[:is_end]
        inner = metrics_table(part, per_year, r.init_cash)
        inner.insert(0, "window", f"in-sample {first}..{str(part.index[-1].date())}")
        inner.insert(0, "series", inner.index)
        tables.insert(0, inner)
    return table_html(pd.concat(tables).reset_index(drop=True))


def _in_sample_end(r: Run) -> pd.Timestamp | None:
    """Where an optimisation's in-sample window ends, when it kept a holdout."""
    if r.kind != "optimize":
        return None
    period = r.summary.get("period") or {}
    ends = [
        v.get("in_sample_end")
        for v in period.values()
        if v.get("in_sample_end") and v.get("in_sample_bars", 0) < v.get("bars", 0)
    ]
    return max(pd.Timestamp(e) for e in ends) if ends else None


# --- page parts ---------------------------------------------------------------------------------


def _header(r: Run, equity: pd.DataFrame, outcome: ReportOutcome) -> list[str]:
    s = r.summary
    first, last = str(equity.index[0].date()), str(equity.index[-1].date())
    params = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in r.params.items())
    label = {"optimize": "chosen parameters", "walkforward": "parameters"}.get(r.kind, "parameters")
    links = []
    if "tearsheet" in outcome.pages:
        links.append(f'<a href="{TEARSHEET}">QuantStats tearsheet</a>')
    for name in ("trades.csv", "summary.json", "equity.csv", "results.parquet", "folds.csv"):
        if r.has(name):
            links.append(f'<a href="{name}">{name}</a>')
    links.append('<a href="../index.html">all runs</a>')
    esc = html.escape
    lines = [
        f"<p>{esc(r.kind)} of <b>{esc(r.strategy)}</b> on {esc(', '.join(r.symbols))} ({esc(r.interval)} bars, "
        f"{first} to {last})" + (f"; {label}: {esc(params)}" if params else "") + "</p>",
        f"<p>run {esc(r.run_id)} &middot; created {esc(str(s.get('created_at', '?')))} &middot; git "
        f"{esc(str(s.get('git_sha', '?'))[:12])} &middot; config {esc(str(s.get('config_hash', ''))[:8])} &middot; "
        f"data {esc(str(s.get('data_hash', ''))[:8])}</p>",
        f"<p>{' &middot; '.join(links)}</p>",
    ]
    return lines + headline_html(s)


def headline_html(summary: dict[str, Any]) -> list[str]:
    """The same labelled headline and verdict the command line printed (quantlab.runs.headline,
    quantlab.runs.verdict), so the page and the terminal never show unlabelled, different numbers."""
    from quantlab.runs.headline import equity_window, returns_basis, sentence, windows
    from quantlab.runs.verdict import run_verdicts, worst

    esc = html.escape
    basis = returns_basis(summary)
    items = "".join(
        f"<li>{'<b>Headline</b> ' if i == 0 else ''}{esc(sentence(w, basis))} "
        f"<small>({esc(w.get('source', ''))})</small></li>"
        for i, w in enumerate(windows(summary))
    )
    lines = [
        f'<div class="headline"><ul>{items}</ul><p>Charts, the Performance table and the tearsheet '
        f"show the {esc(equity_window(summary))} ({esc(basis)} returns) unless a row says otherwise.</p></div>"
    ]
    verdicts = run_verdicts(summary)
    if verdicts:
        overall = worst(verdicts.values())
        level = {"red": "error", "amber": "warning", "green": "info"}.get(overall.grade or "", "warning")
        per = (
            ""
            if len(verdicts) == 1
            else "<ul>" + "".join(f"<li>{esc(sym)}: {esc(v.sentence)}</li>" for sym, v in verdicts.items()) + "</ul>"
        )
        lines.append(
            notice_html(
                level,
                f'<b class="verdict">Verdict: {esc(overall.sentence if len(verdicts) == 1 else overall.label + " (worst symbol)")}</b>'
                f'{per} <small>Thresholds: docs/overfitting.md, "The verdict".</small>',
            )
        )
    return lines


def _notices(outcome: ReportOutcome) -> list[str]:
    out = []
    if "tearsheet" in outcome.failures:
        out.append(
            notice_html(
                "error",
                f"<b>The QuantStats tearsheet could not be written.</b> {html.escape(outcome.failures['tearsheet'])}. "
                "The charts below do not depend on it. quantlab pins the QuantStats release it is tested with "
                "(pip install -c requirements/constraints.txt -e .); rebuild with <code>quantlab report "
                f"{html.escape(outcome.run_id)}</code> once it is fixed.",
            )
        )
    for what, why in outcome.failures.items():
        if what != "tearsheet":
            out.append(notice_html("error", f"<b>Chart {html.escape(what)} failed:</b> {html.escape(why)}"))
    for warning in outcome.warnings:
        out.append(notice_html("warning", html.escape(warning)))
    return out


def _common_sections(
    r: Run,
    equity: pd.DataFrame,
    bench: Benchmark | None,
    outcome: ReportOutcome,
    marker: tuple[str, str] | None = None,
    equity_note: str = "",
) -> list[Section]:
    sections: list[Section] = []
    bench_eq = _bench_equity(equity, bench, r)
    name = f"{bench.symbol} buy & hold ({'total return' if bench.field == 'adj_close' else 'price'})" if bench else ""
    window = f"{equity_window(r.summary)}, {returns_basis(r.summary)} returns"
    _add(
        sections,
        outcome,
        "Equity and drawdown",
        charts.equity_drawdown,
        equity,
        bench_eq,
        name,
        f"{charts.EQUITY_TITLE}: {window}",
        marker,
        note=equity_note,
    )
    sections.append(
        Section(
            "Performance",
            "performance",
            html=_performance_table(r, equity, bench),
            note="Computed from equity.csv for every series alike (risk-free 0, annualised with the bar interval); "
            "the window column says which dates each row covers.",
        )
    )
    return sections


def _price_section(r: Run, outcome: ReportOutcome, who: str) -> list[Section]:
    """Price with trades, from chart.csv (runs saved before it existed skip the chart)."""
    from quantlab.reports.price_chart import PRICE_TITLE, price_trades

    sections: list[Section] = []
    if not r.has("chart.csv"):
        outcome.skipped[PRICE_TITLE] = "chart.csv is missing (rerun to write it)"
        return sections
    title = f"{PRICE_TITLE}: {who}, {equity_window(r.summary)}"
    _add(
        sections,
        outcome,
        PRICE_TITLE,
        price_trades,
        r.chart(),
        r.trades(),
        title,
        note="Close with the strategy's indicator lines (when its spec names them); triangles mark entries and "
        "exits at their fill prices, shading the time in a position.",
        why_none="chart.csv has no bars",
    )
    return sections


def _tail_sections(r: Run, equity: pd.DataFrame, outcome: ReportOutcome) -> list[Section]:
    sections: list[Section] = []
    _add(sections, outcome, "Monthly returns", charts.monthly_heatmap, equity)
    _add(
        sections,
        outcome,
        "Trade returns",
        charts.trade_returns,
        r.trades(),
        why_none="no trades" if r.has("trades.csv") else "trades.csv is missing",
    )
    return sections


def _backtest(r: Run, equity: pd.DataFrame, bench: Benchmark | None, outcome: ReportOutcome) -> list[Section]:
    sections = _common_sections(r, equity, bench, outcome)
    sections += _price_section(r, outcome, "the backtest")
    per = r.summary.get("metrics") or {}
    if per:
        frame = pd.DataFrame.from_dict(per, orient="index")
        frame.insert(0, "series", frame.index)
        sections.append(Section("Key metrics (vectorbt)", "key-metrics", html=table_html(frame.reset_index(drop=True))))
    reasons = exit_reasons_section(r.trades() if r.has("trades.csv") else None)
    if reasons is not None:
        sections.append(reasons)
    return sections + _tail_sections(r, equity, outcome)


def exit_reasons_section(trades: pd.DataFrame | None) -> Section | None:
    """How round trips ended (signal, stop, target, trail, time): with exit rules on, the
    split is what tells a stop that saves from one that only churns. None without reasons."""
    if trades is None or "Exit Reason" not in trades or not len(trades):
        return None
    done = trades[trades["Exit Reason"].notna() & (trades["Exit Reason"].astype(str) != "")]
    if not len(done):
        return None
    grouped = done.groupby("Exit Reason", sort=True)
    frame = pd.DataFrame(
        {
            "exit reason": list(grouped.groups),
            "trades": grouped.size().to_numpy(),
            "mean return": grouped["Return"].mean().to_numpy(),
            "total PnL": grouped["PnL"].sum().round(2).to_numpy(),
        }
    )
    return Section(
        "Exits by reason",
        "exit-reasons",
        html=table_html(frame),
        note="Round trips by how they closed (trades.csv's Exit Reason; rules in docs/research.md).",
    )


def _optimize(r: Run, equity: pd.DataFrame, bench: Benchmark | None, outcome: ReportOutcome) -> list[Section]:
    from quantlab.reports import search_charts as sc

    s = r.summary
    metric = r.metric
    period = s.get("period") or {}
    ends = sorted(
        {
            v.get("in_sample_end")
            for v in period.values()
            if v.get("in_sample_end") and v.get("in_sample_bars", 0) < v.get("bars", 0)
        }
    )
    marker = (str(pd.Timestamp(ends[0]).date()), "holdout starts") if ends else None
    note = "The winner over the full history" + (
        " (the dotted line marks where the held-out data begins)." if marker else "."
    )
    sections = _common_sections(r, equity, bench, outcome, marker, note)
    sections += _price_section(r, outcome, "the winner")
    holdout = r.holdout()
    if holdout is not None and not holdout.empty:
        sections.append(
            Section(
                "Holdout: the winner in-sample vs held out",
                "holdout",
                html=table_html(holdout),
                note="in_sample_* columns: the search window; holdout_*: the held-out tail traded "
                f"from a fresh account ({returns_basis(s)} returns).",
            )
        )
    params = r.param_names
    best = r.params
    rows = r.result_rows()
    results = r.results() if rows <= REPORT_MAX_ROWS else None  # a streamed 1e7-row sweep stays on disk
    if results is None:
        why = f"results.parquet has {rows:,} rows; these charts are drawn up to {REPORT_MAX_ROWS:,}"
        outcome.skipped["Parameter heatmap"] = outcome.skipped["In-sample vs holdout"] = why
    else:
        _add(
            sections,
            outcome,
            "Parameter heatmap",
            sc.param_heatmap,
            results,
            params,
            best,
            metric,
            why_none="the search varied no parameter",
        )
        _add(
            sections,
            outcome,
            "In-sample vs holdout",
            sc.holdout_scatter,
            results,
            params,
            best,
            metric,
            why_none="no holdout was kept (--holdout 0)",
        )
    top = r.top()
    if top is not None and not top.empty:
        sections.append(
            Section(
                f"Top {top['rank'].nunique() if 'rank' in top else len(top)} (replayed by vectorbt)",
                "top",
                html=table_html(top),
                note=f"In-sample metrics ({returns_basis(s)} returns): the window the search ranked on."
                + _repeats_note(s.get("study") or {}),
            )
        )
    method = (s.get("config") or {}).get("method", "grid")
    if method == "tpe":
        _add(
            sections,
            outcome,
            "Optuna trial history",
            sc.optuna_history,
            s.get("study") or {},
            metric,
            why_none="the summary lists no trials",
        )
        _add(
            sections,
            outcome,
            "Parameter importances",
            sc.param_importances,
            results,
            params,
            metric,
            why_none="too few distinct trials",
        )
    else:
        outcome.skipped["Optuna trial history"] = outcome.skipped["Parameter importances"] = (
            f"method was {method}, not tpe"
        )
    sections += _overfit_sections(r, outcome)
    return sections + _tail_sections(r, equity, outcome)


def _repeats_note(study: dict[str, Any]) -> str:
    """TPE's repeated proposals, said next to the table that lists each set once."""
    repeats = study.get("repeated_trials") or 0
    if not repeats:
        return ""
    return (
        f" Each parameter set is listed once (its first trial): {repeats:,} of {study['trials']:,} "
        "trials repeated a parameter set already tried."
    )


def _overfit_sections(r: Run, outcome: ReportOutcome) -> list[Section]:
    from quantlab.reports import overfit_charts as oc

    sections: list[Section] = []
    overfit = r.overfit()
    if not overfit:
        for title in ("Deflated Sharpe ratio", "PBO logit distribution", "Performance degradation"):
            outcome.skipped[title] = "overfit.json is missing"
        return sections
    rows = []
    for symbol, stats in overfit.items():
        dsr, pbo = (stats or {}).get("deflated_sharpe", {}), (stats or {}).get("pbo", {})
        rows.append(
            {
                "symbol": symbol,
                "trials": stats.get("n_trials"),
                "deflated Sharpe": dsr.get("dsr", dsr.get("error")),
                "PBO": pbo.get("pbo", pbo.get("error")),
                "P(OOS loss)": pbo.get("prob_oos_loss"),
                "degradation slope": pbo.get("degradation_slope"),
                "CSCV splits": pbo.get("n_splits"),
            }
        )
    note = (
        "Deflated Sharpe: probability that the winner's true Sharpe is above zero after accounting for the number "
        "of trials. PBO: share of CSCV splits in which the in-sample winner ranks below the out-of-sample median."
    )
    _add(
        sections,
        outcome,
        "Deflated Sharpe ratio",
        oc.deflated_sharpe,
        overfit,
        note=note,
        table=table_html(pd.DataFrame(rows)),
        why_none="no deflated Sharpe in overfit.json",
    )
    _add(sections, outcome, "PBO logit distribution", oc.pbo_logits, overfit, why_none="no PBO logits in overfit.json")
    _add(sections, outcome, "Performance degradation", oc.degradation, overfit, why_none="no CSCV performance pairs")
    return sections


def _wf_table(wf: dict[str, Any]) -> pd.DataFrame:
    """Per symbol: walk-forward efficiency, stitched OOS metrics and walk-forward PBO."""
    rows = []
    symbols = list(dict.fromkeys([*(wf.get("efficiency") or {}), *(wf.get("oos_metrics") or {})]))
    for symbol in symbols:
        eff = (wf.get("efficiency") or {}).get(symbol) or {}
        oos = (wf.get("oos_metrics") or {}).get(symbol) or {}
        ovf = (wf.get("overfit") or {}).get(symbol) or {}
        rows.append(
            {
                "symbol": symbol,
                "metric": eff.get("metric"),
                "mean in-sample": eff.get("is_mean"),
                "mean out-of-sample": eff.get("oos_mean"),
                "efficiency": eff.get("efficiency"),
                "CAGR efficiency": eff.get("annualised_return"),
                "OOS sharpe": oos.get("sharpe"),
                "OOS total_return": oos.get("total_return"),
                "OOS max_drawdown": oos.get("max_drawdown"),
                "OOS trades": oos.get("n_trades"),
                "PBO (folds)": ovf.get("pbo"),
                "median OOS rank": ovf.get("median_oos_rank"),
                "mean in-sample DSR": ovf.get("mean_is_dsr"),
            }
        )
    return pd.DataFrame(rows)


def _walkforward(r: Run, equity: pd.DataFrame, bench: Benchmark | None, outcome: ReportOutcome) -> list[Section]:
    from quantlab.reports import overfit_charts as oc
    from quantlab.reports import wf_charts as wc

    s = r.summary
    folds = r.folds()
    wf = s.get("walkforward") or {}
    sections: list[Section] = []
    _add(sections, outcome, "Walk-forward folds", wc.folds_chart, folds, equity)
    sections += _common_sections(
        r, equity, bench, outcome, equity_note="Out-of-sample equity: one account stitched across the test windows."
    )
    table = _wf_table(wf)
    if not table.empty:
        sections.append(
            Section(
                "Walk-forward summary",
                "wf-summary",
                html=table_html(table),
                note="Efficiency: mean out-of-sample metric / mean in-sample metric over the folds (CAGR efficiency: "
                "stitched out-of-sample CAGR / mean in-sample CAGR). PBO (folds): share of folds whose chosen "
                "parameters rank below the median of all candidates out of sample.",
            )
        )
    efficiency = {k: v.get("efficiency") for k, v in (wf.get("efficiency") or {}).items() if isinstance(v, dict)}
    _add(
        sections,
        outcome,
        "In-sample vs out-of-sample by fold",
        wc.fold_metrics_chart,
        folds,
        r.metric,
        efficiency,
        why_none="folds.csv has no is_/oos_ columns",
    )
    drift = r.drift()
    _add(
        sections,
        outcome,
        "Parameter drift",
        wc.drift_chart,
        drift if drift is not None else folds,
        r.param_names,
        why_none="no parameter columns",
    )
    logits = {
        sym: {"pbo": {"logits": v.get("logits"), "pbo": v.get("pbo")}}
        for sym, v in (wf.get("overfit") or {}).items()
        if isinstance(v, dict)
    }
    _add(
        sections,
        outcome,
        "Walk-forward PBO",
        oc.pbo_logits,
        logits,
        oc.WF_PBO_TITLE,
        "folds",
        note="One logit per fold: the chosen parameters' out-of-sample rank among all candidates (< 0: below the median).",
        why_none="the summary has no walk-forward logits",
    )
    shown = [
        c
        for c in (
            "fold",
            "symbol",
            "train_start",
            "train_end",
            "test_start",
            "test_end",
            *r.param_names,
            f"is_{r.metric}",
            f"oos_{r.metric}",
            "oos_total_return",
            "oos_max_drawdown",
            "oos_trades",
            "oos_rank",
            "is_dsr",
            "partial",
        )
        if c in folds.columns
    ]
    sections.append(Section("Folds", "folds", html=table_html(folds[list(dict.fromkeys(shown))])))
    if r.has("overfit.json"):
        sections += _overfit_sections(r, outcome)
    return sections + _tail_sections(r, equity, outcome)


SECTIONS: dict[str, Callable[[Run, pd.DataFrame, Benchmark | None, ReportOutcome], list[Section]]] = {
    "backtest": _backtest,
    "optimize": _optimize,
    "walkforward": _walkforward,
}


def build_pages(path: Path, report: bool | str, store: Any = None) -> Any:
    """Write the run's report pages (see :mod:`quantlab.reports`) unless ``report`` is off.

    ``report``: True or ``"full"`` (plotly page and QuantStats tearsheet), ``"charts"``
    (plotly page only), False or ``"none"``. Returns the ``ReportOutcome`` or None. A
    QuantStats failure is recorded in the outcome, never raised.
    """
    if report in (False, "none"):
        return None
    if report not in (True, "full", "charts"):
        raise ReportError("unknown report setting", found=repr(report), fix="use full, charts or none")
    return build(path, store=store, tearsheet=report != "charts")
