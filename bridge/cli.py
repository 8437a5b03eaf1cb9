"""The ``bridge`` command line: run, status, stop, resume, report, dashboard, approve, reject, backup, restore.

Commands only parse options, build the configuration (TOML < environment < flags) and
call one function. Errors a user can cause print one paragraph (what, found, fix) and
exit non-zero (2 configuration, 3 gateway unreachable, 4 account); nothing is sent.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from bridge import __version__
from quantlab.errors import QuantlabError

F = TypeVar("F", bound=Callable[..., Any])


def _errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except QuantlabError as err:
            from bridge.ops.logs import redact

            click.echo(f"bridge: error: {redact(err.render())}", err=True)
            sys.exit(getattr(err, "exit_code", 1) or 1)

    return wrapper  # type: ignore[return-value]


REPLAY_DEFAULT_STRATEGY = "sma_cross"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bridge")
def cli() -> None:
    """Run quantlab strategy kernels live on Interactive Brokers (paper by default)."""


def _flags(**kw: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for key, value in kw.items():
        section, _, name = key.partition(".")
        if not name:
            section, name = "", section
        if value is not None:
            out.setdefault(section, {})[name] = value
    return out


@cli.command()
@click.option("--paper", "mode", flag_value="paper", help="Paper trading (the default).")
@click.option("--live", "mode", flag_value="live", help="Live trading: needs the account id confirmed.")
@click.option(
    "--replay",
    "mode",
    flag_value="replay",
    help="Replay bundled bars through the pipeline (no IB; strategy defaults to sma_cross).",
)
@click.option("--strategy", help="Strategy name (research/), e.g. sma_cross.")
@click.option("--symbols", help="Comma-separated symbols, e.g. SPY,QQQ.")
@click.option("--params", help="Strategy parameters, e.g. fast=20,slow=50.")
@click.option("--bar", type=click.Choice(["1d", "1h", "30m", "15m", "5m", "1m"]), help="Bar size (default 1d).")
@click.option("--host", help="IB Gateway/TWS host (default 127.0.0.1).")
@click.option("--port", type=int, help="API port (4002 paper gateway, 4001 live gateway).")
@click.option("--client-id", type=int, help="API client id.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="bridge.toml (see bridge.example.toml).")
@click.option("--ledger", help="SQLite ledger path.")
@click.option("--dry-run", is_flag=True, default=None, help="Do everything but send orders.")
@click.option("--confirm-account", help="Live account id (otherwise asked at a prompt).")
@click.option("--health-port", type=int, help="Serve /health and /status on 127.0.0.1:PORT.")
@click.option("--start", help="Replay: first bar (YYYY-MM-DD).")
@click.option("--end", help="Replay: last bar (YYYY-MM-DD).")
@click.option("--cash", type=float, default=100_000.0, show_default=True, help="Replay: starting cash.")
@click.option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--log-file", help="Also write JSON logs to this file.")
@_errors
def run(
    mode: str | None,
    strategy: str | None,
    symbols: str | None,
    params: str | None,
    bar: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    config_path: str | None,
    ledger: str | None,
    dry_run: bool | None,
    confirm_account: str | None,
    health_port: int | None,
    start: str | None,
    end: str | None,
    cash: float,
    log_level: str | None,
    log_file: str | None,
) -> None:
    """Connect, seed history, then act on every completed bar (paper by default)."""
    from bridge.app import confirm_live_account, run_bridge, validate_run
    from bridge.config import load_config
    from bridge.ops.logs import setup

    flags = _flags(
        **{
            "mode": mode,
            "dry_run": dry_run,
            "strategy.name": strategy,
            "strategy.symbols": symbols,
            "strategy.params": params,
            "strategy.bar": bar,
            "gateway.host": host,
            "gateway.port": port,
            "gateway.client_id": client_id,
            "ledger.path": ledger,
            "health.port": health_port,
            "log.level": log_level,
            "log.file": log_file,
        }
    )
    cfg = load_config(config_path, overrides=flags)
    if cfg.mode == "replay" and not cfg.strategy.name:
        # Replay moves no money: default to the demo strategy (paper and live never default).
        cfg = replace(cfg, strategy=replace(cfg.strategy, name=REPLAY_DEFAULT_STRATEGY))
        given = f"--params {cfg.strategy.params}" if cfg.strategy.params else "its default parameters"
        click.echo(f"replay: no --strategy given, using {REPLAY_DEFAULT_STRATEGY} with {given}", err=True)
    validate_run(cfg)  # unknown strategy, bad parameters, no symbols: before any logging or connection
    if cfg.mode == "live":
        cfg = confirm_live_account(
            cfg,
            confirm_account,
            prompt=lambda: click.prompt(
                "Live trading. Type the live account id to confirm", default="", show_default=False
            ),
        )
    setup(cfg.log.level, cfg.log.file or None, retention_days=cfg.ops.log_retention_days)
    if cfg.mode == "replay":
        from bridge.app import replay_summary

        click.echo(json.dumps(replay_summary(cfg, start, end, cash), indent=2, default=str))
        return
    sys.exit(run_bridge(cfg))


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_errors
def status(config_path: str | None, ledger: str | None, as_json: bool) -> None:
    """Connection, positions, open orders, today's P&L and risk state (from the ledger)."""
    from bridge.app import status_view

    view = status_view(_cfg(config_path, ledger))
    if as_json:
        click.echo(json.dumps(view, indent=2, default=str))
        return
    click.echo(_status_text(view))


@cli.command()
@click.option(
    "--flatten",
    is_flag=True,
    help="Also close the positions of the bridge's symbols with market orders (their protective orders are "
    "cancelled first; without --flatten they are kept).",
)
@click.option("--shutdown", is_flag=True, help="Also end the running `bridge run` process.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@click.option("--host", help="Gateway host if no runner is alive.")
@click.option("--port", type=int, help="Gateway port if no runner is alive.")
@click.option("--client-id", type=int, help="Client id for the stop connection (default: the runner's + 1).")
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Seconds to wait for a running bridge.")
@_errors
def stop(
    flatten: bool,
    shutdown: bool,
    config_path: str | None,
    ledger: str | None,
    host: str | None,
    port: int | None,
    client_id: int | None,
    timeout: float,
) -> None:
    """Emergency stop: latch the kill switch, cancel open orders, flatten if asked, halt.

    Without --flatten the protective orders of open positions (the stop-loss, take-profit and
    trailing stop of each entry) stay at the broker, so no position is left unprotected; the
    output lists them ("kept protective orders: ..."). Every other open order is cancelled;
    orders another client id placed that cannot be cancelled one by one are listed under
    "not_cancelled" (exit 3). With --flatten everything, protective orders included, is
    cancelled first, then the positions are closed with market orders.
    """
    from bridge.app import stop_bridge
    from bridge.ops.logs import console_logs

    cfg = _cfg(config_path, ledger)
    # the console only (the runner may own the log file and rotate it); warnings and up, as before
    with console_logs("WARNING"):
        result = stop_bridge(
            cfg, flatten=flatten, shutdown=shutdown, client_id=client_id, timeout=timeout, host=host, port=port
        )
    if result.get("note"):  # no runner answered: say so before the outcome
        done = "open orders cancelled" if result.get("cancelled") else "open orders NOT cancelled"
        click.echo(f"bridge stop: {result['note']}", err=True)
        click.echo(f"bridge stop: kill switch latched on {result['ledger']}, {done}", err=True)
    if result.get("kept"):
        click.echo(f"bridge stop: {result['kept_text']} (they protect open positions)", err=True)
    for o in result.get("not_cancelled") or []:
        click.echo(
            f"bridge stop: {o['order_ref']} NOT cancelled: client id {o['client_id']} owns it; {o['fix']}", err=True
        )
    click.echo(json.dumps(result, indent=2, default=str))
    if result.get("error") or result.get("not_cancelled"):
        sys.exit(3)


@cli.command()
@click.option("--yes", is_flag=True, help="Acknowledge without the prompt.")
@click.option(
    "--rebaseline", is_flag=True, help="Accept the broker's current positions as the new baseline (after a mismatch)."
)
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@_errors
def resume(yes: bool, rebaseline: bool, config_path: str | None, ledger: str | None) -> None:
    """Clear a latched kill switch or halt after an explicit acknowledgement."""
    from bridge.app import resume_bridge

    def ask(text: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            return False
        return bool(click.prompt(text, default="", show_default=False).strip() == "RESUME")

    result = resume_bridge(_cfg(config_path, ledger), rebaseline=rebaseline, acknowledge=ask)
    click.echo(json.dumps(result, indent=2, default=str))
    if result.get("error"):
        sys.exit(2)


@cli.command()
@click.option("--date", "day", help="Trading day YYYY-MM-DD (default: today, New York).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Folder (default: reports/bridge).")
@_errors
def report(day: str | None, config_path: str | None, ledger: str | None, out_dir: str | None) -> None:
    """Daily summary (orders, fills, P&L, positions, cash, outstanding orders) as HTML and JSON."""
    from bridge.app import report_day

    jpath, hpath, summary = report_day(_cfg(config_path, ledger), day, Path(out_dir) if out_dir else None)
    click.echo(f"wrote {jpath}\nwrote {hpath}")
    pnl = summary["pnl"]
    click.echo(
        f"{summary['day']}: {len(summary['orders'])} orders, {len(summary['fills'])} fills, "
        f"commissions {summary['commissions']:.2f}, equity change {pnl['change']}"
    )


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@click.option("--host", help="Address to bind (default 127.0.0.1: this machine only).")
@click.option("--port", type=int, help="Port (default 8765).")
@_errors
def dashboard(config_path: str | None, ledger: str | None, host: str | None, port: int | None) -> None:
    """Web dashboard (separate process over the ledger): positions, orders, limits, controls."""
    from bridge.ops.dashboard.server import serve
    from bridge.ops.logs import setup

    cfg = _cfg_with(config_path, {"ledger.path": ledger, "dashboard.host": host, "dashboard.port": port})
    setup(cfg.log.level)
    serve(cfg, cfg.dashboard.host, cfg.dashboard.port, announce=lambda text: click.echo(text, err=True))


def _by() -> str:
    import getpass
    import socket

    return f"cli ({getpass.getuser()}@{socket.gethostname()})"


@cli.command()
@click.argument("order_ref")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@_errors
def approve(order_ref: str, config_path: str | None, ledger: str | None) -> None:
    """Send an order held as needs_approval (the running bridge re-checks it with the risk gate)."""
    from bridge.app import approve_order

    click.echo(json.dumps(approve_order(_cfg(config_path, ledger), order_ref, _by()), indent=2, default=str))


@cli.command()
@click.argument("order_ref")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@_errors
def reject(order_ref: str, config_path: str | None, ledger: str | None) -> None:
    """Void an order held as needs_approval."""
    from bridge.app import reject_order

    click.echo(json.dumps(reject_order(_cfg(config_path, ledger), order_ref, _by()), indent=2, default=str))


@cli.command()
@click.option(
    "--out", "dest", type=click.Path(dir_okay=False), help="Backup file (default backups/<ledger>-<UTC time>.sqlite)."
)
@click.option("--prune", is_flag=True, help="Keep only the newest [ops] backup_keep backups in the backup folder.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path.")
@_errors
def backup(dest: str | None, prune: bool, config_path: str | None, ledger: str | None) -> None:
    """Copy the ledger with SQLite's online backup API (safe while the bridge runs)."""
    from bridge.ledger.backup import backup as do_backup

    click.echo(json.dumps(do_backup(_cfg(config_path, ledger), dest, prune), indent=2, default=str))


@cli.command()
@click.argument("backup_file", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Restore even if the backup does not reconcile with itself.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False))
@click.option("--ledger", help="SQLite ledger path (the one to replace).")
@_errors
def restore(backup_file: str, force: bool, config_path: str | None, ledger: str | None) -> None:
    """Replace the ledger with a backup (refused while a bridge runs; the current one is kept)."""
    from bridge.ledger.backup import restore as do_restore

    click.echo(json.dumps(do_restore(_cfg(config_path, ledger), backup_file, force), indent=2, default=str))


def _cfg_with(config_path: str | None, flags: dict[str, Any]) -> Any:
    from bridge.config import load_config

    return load_config(config_path, overrides=_flags(**flags))


def _cfg(config_path: str | None, ledger: str | None, **gateway: Any) -> Any:
    from bridge.config import load_config

    return load_config(
        config_path, overrides=_flags(**{"ledger.path": ledger, **{f"gateway.{k}": v for k, v in gateway.items()}})
    )


def _status_text(v: dict[str, Any]) -> str:
    lines = [f"ledger: {v['ledger']}", "runner: " + runner_text(v["runner"])]
    run = v.get("run") or {}
    lines.append(
        f"last run: {run.get('run_id', '-')}, state {run.get('state', '-')}, "
        f"last heartbeat {run.get('heartbeat_at', '-')}, ended {run.get('ended_at') or '-'}"
    )
    st = v.get("status") or {}
    lines.append(
        f"connection: {'connected' if st.get('connected') and v['runner_alive'] else 'not connected'} account {st.get('account', '-')}"
    )
    risk = v["risk"]
    lines.append(
        f"risk: kill switch {'LATCHED' if risk['kill_switch'] else 'clear'}, halted {risk['halted']} {risk['reason']}"
    )
    pnl = v.get("pnl_today")
    lines.append(
        f"P&L today: {'-' if pnl is None or (isinstance(pnl, float) and math.isnan(pnl)) else f'{pnl:,.2f}'} "
        f"(equity {_money(v.get('equity'))}, start of day {_money(risk.get('sod_equity'))})"
    )
    lines.append("positions:" + ("" if v["positions"] else " none"))
    protection = v.get("protection") or {}
    for sym, p in v["positions"].items():
        lines.append(f"  {sym}: {p['quantity']:g} @ {_money(p.get('avg_cost'), 4)}")
        for o in protection.get(sym, []):
            lines.append(f"    protected by {_protective_text(o)}")
    for sym in sorted(set(protection) - set(v["positions"])):  # e.g. the entry is still working
        for o in protection[sym]:
            lines.append(f"  {sym}: (no position yet) {_protective_text(o)}")
    lines.append("open orders:" + ("" if v["open_orders"] else " none"))
    for o in v["open_orders"]:
        lines.append(
            f"  {o['order_ref']} {o['side']} {o['quantity']:g} {o['symbol']} {o['status']} filled {o['filled']:g}"
        )
    return "\n".join(lines)


def runner_text(r: dict[str, Any]) -> str:
    """One line on the ledger's lock: alive (pid, host, run, heartbeat age), stale or none."""
    who = f"pid {r.get('pid')} on {r.get('host')} (run {r.get('run_id')}, since {r.get('since')})"
    if r["state"] == "alive":
        age = r.get("heartbeat_age")
        beat = "no heartbeat yet (starting)" if age is None else f"last heartbeat {age:.0f}s ago"
        if age is not None and not r.get("heartbeating"):
            beat += " (not heartbeating: starting up or hung)"
        return f"alive, {who} holds {r['lock']}; {beat}"
    if r["state"] == "stale":
        return f"stale: {who} did not release {r['lock']} (killed?); the lock is free, nothing to clean up"
    if r["state"] == "unknown":
        return f"unknown: cannot read {r['lock']} ({r.get('error')})"
    return f"none (no process holds {r['lock']})"


def _protective_text(o: dict[str, Any]) -> str:
    if o["role"] == "stop":
        level = f"stop {o['aux_price']}"
    elif o["role"] == "take_profit":
        level = f"take-profit {o['limit_price']}"
    else:
        at = f" at {o['aux_price']}" if o.get("aux_price") is not None else ""  # a STP the runner ratchets
        level = f"trailing {o['trail_pct']}%{at}"
    return f"{level}: {o['side']} {o['quantity']:g} ({o['order_ref']}, {o['status']})"


def main() -> None:
    """Console-script entry point."""
    from quantlab.engine.intervals import ShortSampleWarning

    # replay's parity backtest covers the replayed bars only: a short-sample note is not news there
    warnings.simplefilter("ignore", ShortSampleWarning)
    cli(prog_name="bridge")


def _money(value: object, places: int = 2) -> str:
    """A ledger amount for people: rounded (a float's last digits are noise), '-' when unknown."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return f"{value:,.{places}f}"
    return "-" if value is None else str(value)
