"""Bridge configuration: frozen dataclasses loaded from TOML, then environment, then flags.

Precedence: defaults < ``bridge.toml`` (``--config``) < ``BRIDGE_<SECTION>_<KEY>``
environment variables < command-line flags. Unknown sections or keys are rejected with a
"did you mean" hint; numbers are range-checked (negative limits are errors). Secrets
(SMTP password, webhook token) are never read from the TOML file: only from the
environment variable or the secret file the config names, and they are wrapped in
:class:`Secret`, whose ``repr``/``str`` never show the value.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.errors import BridgeConfigError
from bridge.risk import RiskLimits
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.errors import QuantlabError, suggest

log = logging.getLogger("bridge.config")

MODES = ("paper", "live", "replay")
BARS = ("1d", "1h", "30m", "15m", "5m", "1m")
SECRET_KEYS = ("smtp_password", "webhook_token", "password", "token", "api_key")


class Secret:
    """A credential. ``str``/``repr`` print ``***``; call :meth:`reveal` where it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class GatewayConfig:
    """Where IB Gateway/TWS listens and how to (re)connect."""

    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 17
    account: str = ""
    connect_timeout: float = 4.0
    connect_attempts: int = 5
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    request_timeout: float = 30.0


@dataclass(frozen=True)
class StrategyConfig:
    """Which research kernel runs, on what, at which bar size."""

    name: str = ""
    symbols: tuple[str, ...] = ()
    params: str = ""
    bar: str = "1d"


def _bridge_sizing() -> Sizing:
    """The bridge trades 10% of equity per position by default (the backtest's default is all of it)."""
    return Sizing(mode="fraction", value=0.10)


@dataclass(frozen=True)
class OrdersConfig:
    """Order type, what happens to limit orders that do not fill and to orders the broker rejects."""

    type: str = "market"
    limit_offset_bps: float = 5.0
    limit_timeout: float = 60.0
    on_timeout: str = "cancel"
    tif: str = "DAY"
    cancel_wait: float = 5.0
    reject_retries: int = 3
    on_exit_rejected: str = "halt"


@dataclass(frozen=True)
class DataConfig:
    """History and freshness of bars."""

    history_bars: int = 0
    max_bar_age: float = 0.0
    complete_grace: float = 5.0
    max_clock_skew: float = 60.0
    use_rth: bool = True
    what_to_show: str = "TRADES"
    calendar: str = "XNYS"


@dataclass(frozen=True)
class ReconcileConfig:
    """What a reconciliation mismatch does: ``halt`` (default) or ``warn``; and how often
    (seconds) the runner reconciles and compares positions between reconnects."""

    on_mismatch: str = "halt"
    check_every: float = 300.0


@dataclass(frozen=True)
class LedgerConfig:
    path: str = ""
    synchronous: str = "FULL"


@dataclass(frozen=True)
class EodConfig:
    """End of day: flatten N minutes before the close (0 = off); cancel open orders at the close."""

    flatten_before_close: float = 0.0
    cancel_at_close: bool = True


@dataclass(frozen=True)
class HealthConfig:
    port: int = 0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class NotifyConfig:
    """Alerts always go to the log; email and webhook when configured."""

    email_to: tuple[str, ...] = ()
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    smtp_password_env: str = "BRIDGE_SMTP_PASSWORD"
    smtp_password_file: str = ""
    webhook_url: str = ""
    webhook_token_env: str = "BRIDGE_WEBHOOK_TOKEN"
    webhook_token_file: str = ""
    timeout: float = 5.0


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    file: str = ""


@dataclass(frozen=True)
class BreakersConfig:
    """Circuit breakers above the per-order gate (``bridge/breakers.py``); 0 turns one off.

    Each latches the kill switch (it survives a restart) and clears only on ``bridge resume``.
    """

    max_drawdown_pct: float = 0.10
    rapid_loss_pct: float = 0.05
    rapid_loss_window: float = 3600.0
    max_errors: int = 20
    error_window: float = 600.0
    daily_loss_limit: float = 0.0
    symbol_max_notional: float = 0.0
    symbol_daily_loss: float = 0.0
    cash_reserve: float = 0.0


@dataclass(frozen=True)
class DashboardConfig:
    """``bridge dashboard``: where it listens and where its control token lives."""

    host: str = "127.0.0.1"
    port: int = 8765
    token_file: str = ""
    refresh: float = 1.0


@dataclass(frozen=True)
class AlertsConfig:
    """Tiered alerts (``bridge/ops/alerts.py``): warning tiers, rate limit, routing per channel."""

    warn_at: tuple[str, ...] = ("0.8", "0.9")
    rate_limit: float = 60.0
    webhook_format: str = "json"
    webhook_min_level: str = "warning"
    email_min_level: str = "error"
    webhook_kinds: tuple[str, ...] = ()
    email_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpsConfig:
    """Unattended days: daily report after the close, log retention, ledger backups."""

    report_after_close: bool = True
    report_dir: str = ""
    log_retention_days: int = 14
    backup_dir: str = ""
    backup_keep: int = 14
    min_free_disk_mb: float = 500.0
    max_memory_pct: float = 0.90


@dataclass(frozen=True)
class BridgeConfig:
    """The whole configuration of one ``bridge`` process."""

    mode: str = "paper"
    dry_run: bool = False
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    sizing: Sizing = field(default_factory=_bridge_sizing)  # the engine's own types: one definition, one validation
    costs: Costs = field(default_factory=Costs)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    risk: RiskLimits = field(default_factory=RiskLimits)
    data: DataConfig = field(default_factory=DataConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    eod: EodConfig = field(default_factory=EodConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    log: LogConfig = field(default_factory=LogConfig)
    breakers: BreakersConfig = field(default_factory=BreakersConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    ops: OpsConfig = field(default_factory=OpsConfig)
    sources: tuple[str, ...] = ()

    def sim_config(self, cash: float = 100_000.0) -> SimConfig:
        """The engine's SimConfig with this sizing and these costs (for the shared kernels)."""
        return SimConfig(init_cash=cash, costs=self.costs, sizing=self.sizing)

    def ledger_path(self) -> Path:
        if self.ledger.path:
            return Path(self.ledger.path).expanduser()
        name = {"paper": "bridge-paper", "live": "bridge-live", "replay": "bridge-replay"}[self.mode]
        return Path(f"{name}{'-dryrun' if self.dry_run else ''}.sqlite")

    def public_dict(self) -> dict[str, Any]:
        """Everything except secrets (safe to log and store in the ledger)."""
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {
    "gateway": GatewayConfig,
    "strategy": StrategyConfig,
    "sizing": Sizing,
    "costs": Costs,
    "orders": OrdersConfig,
    "risk": RiskLimits,
    "data": DataConfig,
    "reconcile": ReconcileConfig,
    "ledger": LedgerConfig,
    "eod": EodConfig,
    "health": HealthConfig,
    "notify": NotifyConfig,
    "log": LogConfig,
    "breakers": BreakersConfig,
    "dashboard": DashboardConfig,
    "alerts": AlertsConfig,
    "ops": OpsConfig,
}
TOP_KEYS = ("mode", "dry_run")


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    env: Mapping[str, str] | None = None,
) -> BridgeConfig:
    """Build the configuration: defaults < TOML file < ``BRIDGE_*`` env < ``overrides`` (flags).

    ``overrides`` maps section -> key -> value (``{"": {"mode": "live"}}`` for top-level keys);
    ``None`` values are ignored so unset flags do not override.

    Raises:
        BridgeConfigError: unreadable file, unknown section or key, wrong type, bad value.
    """
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {"": {}}
    sources: list[str] = ["defaults"]
    if path is not None:
        raw = _merge(raw, _read_toml(Path(path)))
        sources.append(str(path))
    from_env = _env_values(env)
    if from_env:
        for section, keys in from_env.items():
            for key in keys:
                log.info(
                    "config from environment",
                    extra={
                        "event": "config_env",
                        "key": f"BRIDGE_{section.upper()}_{key.upper()}" if section else f"BRIDGE_{key.upper()}",
                    },
                )
        raw = _merge(raw, from_env)
        sources.append("environment")
    if overrides:
        clean = {s: {k: v for k, v in kv.items() if v is not None} for s, kv in overrides.items()}
        raw = _merge(raw, clean)
        sources.append("flags")
    return _build(raw, tuple(sources))


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise BridgeConfigError(
            "config file not found", found=str(path), fix="pass --config path/to/bridge.toml (see bridge.example.toml)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BridgeConfigError(
            f"cannot parse {path}", found=str(err), fix="fix the TOML syntax (compare with bridge.example.toml)"
        ) from None
    out: dict[str, dict[str, Any]] = {"": {}}
    for key, value in data.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise BridgeConfigError(f"unknown section [{key}] in {path}", found=key, fix=_hint(key, list(SECTIONS)))
            out[key] = dict(value)
        else:
            out[""][key] = value
    return out


def _env_values(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, value in env.items():
        if not name.startswith("BRIDGE_"):
            continue
        rest = name[len("BRIDGE_") :].lower()
        if rest in TOP_KEYS:
            out.setdefault("", {})[rest] = value
            continue
        section, _, key = rest.partition("_")
        cls = SECTIONS.get(section)
        if cls is None or not key:
            continue  # not a config variable (secrets, test hooks)
        if key not in {f.name for f in dataclasses.fields(cls)}:
            raise BridgeConfigError(
                f"unknown setting in environment variable {name}",
                found=key,
                fix=_hint(key, [f.name for f in dataclasses.fields(cls)]),
            )
        out.setdefault(section, {})[key] = value
    return out


def _merge(a: dict[str, dict[str, Any]], b: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in a.items()}
    for section, kv in b.items():
        out.setdefault(section, {}).update(kv)
    return out


def _build(raw: dict[str, dict[str, Any]], sources: tuple[str, ...]) -> BridgeConfig:
    top = dict(raw.get("", {}))
    for key in top:
        if key not in TOP_KEYS:
            if key in SECRET_KEYS:
                raise _secret_error(key)
            raise BridgeConfigError(
                "unknown top-level key", found=key, fix=_hint(key, list(TOP_KEYS) + [f"[{s}]" for s in SECTIONS])
            )
    parts: dict[str, Any] = {}
    for section, cls in SECTIONS.items():
        parts[section] = _section(cls, section, raw.get(section, {}))
    mode = str(top.get("mode", "paper"))
    if mode not in MODES:
        raise BridgeConfigError("unknown mode", found=repr(mode), fix=f"use one of {', '.join(MODES)}")
    cfg = BridgeConfig(mode=mode, dry_run=_coerce(bool, top.get("dry_run", False), "dry_run"), sources=sources, **parts)
    _validate(cfg)
    return cfg


def _section(cls: type, name: str, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            if key in SECRET_KEYS:
                raise _secret_error(key)
            raise BridgeConfigError(f"unknown key {key!r} in [{name}]", found=key, fix=_hint(key, known))
        kwargs[key] = _coerce(hints[key], value, f"{name}.{key}")
    if cls is Sizing:
        kwargs = {**dataclasses.asdict(_bridge_sizing()), **kwargs}
    try:
        return cls(**kwargs)
    except QuantlabError as err:  # the engine's own checks (Sizing, Costs)
        raise BridgeConfigError(f"invalid [{name}]: {err.what}", found=err.found, fix=err.fix) from None


def _coerce(kind: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in (
                "1",
                "true",
                "yes",
                "on",
                "0",
                "false",
                "no",
                "off",
            ):
                return value.strip().lower() in ("1", "true", "yes", "on")
            raise ValueError
        if kind is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if number != int(number):
                raise ValueError
            return int(number)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise ValueError
            return number
        if kind is str:
            if isinstance(value, Mapping):  # params = { fast = 20, slow = 50 }
                return ",".join(f"{k}={v}" for k, v in value.items())
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise ValueError
            return str(value)
        if origin is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            return tuple(str(i).strip() for i in items if str(i).strip())
        if origin in (Mapping, dict):  # spread_bps = { SPY = 1.0 }, or "SPY=1.0,QQQ=2" from the environment
            pairs = (
                dict(i.split("=", 1) for i in value.split(",") if i.strip()) if isinstance(value, str) else dict(value)
            )
            out = {str(k).strip().upper(): float(v) for k, v in pairs.items()}
            if not all(math.isfinite(v) for v in out.values()):
                raise ValueError
            return out
    except (TypeError, ValueError):
        pass
    name = getattr(kind, "__name__", str(kind))
    kind_text = "a list" if origin is tuple else "a table of symbol = number" if origin in (Mapping, dict) else name
    raise BridgeConfigError(f"{where} must be {kind_text}", found=repr(value))


def _validate(cfg: BridgeConfig) -> None:
    def need(ok: bool, what: str, found: Any, fix: str | None = None) -> None:
        if not ok:
            raise BridgeConfigError(what, found=found, fix=fix)

    g, r, o, d = cfg.gateway, cfg.risk, cfg.orders, cfg.data
    need(
        0 < g.port < 65536, "gateway.port must be 1..65535", g.port, "IB Gateway listens on 4002 (paper) / 4001 (live)"
    )
    need(g.client_id >= 0, "gateway.client_id must be >= 0", g.client_id)
    need(g.connect_attempts >= 1, "gateway.connect_attempts must be >= 1", g.connect_attempts)
    for name in ("connect_timeout", "backoff_initial", "backoff_max", "request_timeout"):
        need(getattr(g, name) > 0, f"gateway.{name} must be > 0", getattr(g, name))
    for name in (
        "max_position_pct",
        "max_gross_exposure",
        "max_order_notional",
        "daily_loss_limit_pct",
        "limit_band_pct",
    ):
        value = getattr(r, name)
        need(value > 0, f"risk.{name} must be a positive number (negative or zero limits are not allowed)", value)
    for name in ("max_positions", "max_orders_per_minute", "max_orders_per_day"):
        value = getattr(r, name)
        need(value >= 1, f"risk.{name} must be >= 1", value)
    need(
        r.approval_threshold >= 0,
        "risk.approval_threshold must be >= 0 (0 disables approval holds)",
        r.approval_threshold,
    )
    need(
        math.isfinite(r.max_loss_per_trade) and r.max_loss_per_trade >= 0,
        "risk.max_loss_per_trade must be >= 0 (account currency; 0 disables)",
        r.max_loss_per_trade,
    )
    need(
        r.max_position_pct <= 1.0,
        "risk.max_position_pct is a fraction of equity (0.10 = 10%)",
        r.max_position_pct,
        "use a value in (0, 1]",
    )
    need(
        r.daily_loss_limit_pct < 1.0,
        "risk.daily_loss_limit_pct is a fraction of equity (0.02 = 2%)",
        r.daily_loss_limit_pct,
    )
    need(o.type in ("market", "limit"), "orders.type must be market or limit", repr(o.type))
    need(o.on_timeout in ("cancel", "market"), "orders.on_timeout must be cancel or market", repr(o.on_timeout))
    need(o.tif in ("DAY", "GTC"), "orders.tif must be DAY or GTC", repr(o.tif))
    for name in ("limit_offset_bps", "limit_timeout", "cancel_wait"):
        need(getattr(o, name) >= 0, f"orders.{name} must be >= 0", getattr(o, name))
    need(
        o.reject_retries >= 0, "orders.reject_retries must be >= 0 (0 = never retry a rejected order)", o.reject_retries
    )
    need(
        o.on_exit_rejected in ("halt", "kill_switch"),
        "orders.on_exit_rejected must be halt or kill_switch",
        repr(o.on_exit_rejected),
    )
    need(d.history_bars >= 0, "data.history_bars must be >= 0 (0 = automatic)", d.history_bars)
    for name in ("max_bar_age", "complete_grace", "max_clock_skew"):
        need(getattr(d, name) >= 0, f"data.{name} must be >= 0", getattr(d, name))
    need(
        cfg.reconcile.on_mismatch in ("halt", "warn"),
        "reconcile.on_mismatch must be halt or warn",
        repr(cfg.reconcile.on_mismatch),
    )
    need(
        5.0 <= cfg.reconcile.check_every <= 3600.0,
        "reconcile.check_every must be 5..3600 seconds",
        repr(cfg.reconcile.check_every),
    )
    need(
        cfg.ledger.synchronous in ("FULL", "NORMAL"),
        "ledger.synchronous must be FULL or NORMAL",
        repr(cfg.ledger.synchronous),
    )
    need(
        cfg.eod.flatten_before_close >= 0, "eod.flatten_before_close must be >= 0 minutes", cfg.eod.flatten_before_close
    )
    need(0 <= cfg.health.port < 65536, "health.port must be 0 (off) or 1..65535", cfg.health.port)
    need(
        cfg.log.level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"),
        "log.level must be DEBUG, INFO, WARNING or ERROR",
        cfg.log.level,
    )
    need(cfg.strategy.bar in BARS, "strategy.bar must be one of " + ", ".join(BARS), repr(cfg.strategy.bar))
    _validate_ops(cfg, need)
    try:
        cfg.sim_config()
    except QuantlabError as err:
        raise BridgeConfigError(f"invalid [sizing]/[costs]: {err.what}", found=err.found, fix=err.fix) from None
    if cfg.sizing.mode == "fraction" and cfg.sizing.value > r.max_position_pct + 1e-12:
        log.warning(
            "sizing above the position cap",
            extra={
                "event": "config_warning",
                "detail": f"sizing.value {cfg.sizing.value} > risk.max_position_pct {r.max_position_pct}: entries will be rejected",
            },
        )


def _validate_ops(cfg: BridgeConfig, need: Any) -> None:
    """The issue-13 sections: breakers, dashboard, alerts, ops."""
    b = cfg.breakers
    for name in ("max_drawdown_pct", "rapid_loss_pct"):
        need(
            0 <= getattr(b, name) < 1, f"breakers.{name} is a fraction of equity in [0, 1) (0 = off)", getattr(b, name)
        )
    for name in (
        "rapid_loss_window",
        "error_window",
        "daily_loss_limit",
        "symbol_max_notional",
        "symbol_daily_loss",
        "cash_reserve",
    ):
        need(getattr(b, name) >= 0, f"breakers.{name} must be >= 0 (0 = off)", getattr(b, name))
    need(b.max_errors >= 0, "breakers.max_errors must be >= 0 (0 = off)", b.max_errors)
    need(0 < cfg.dashboard.port < 65536, "dashboard.port must be 1..65535", cfg.dashboard.port)
    need(0.2 <= cfg.dashboard.refresh <= 5.0, "dashboard.refresh must be 0.2..5 seconds", cfg.dashboard.refresh)
    a = cfg.alerts
    try:
        tiers = [float(x) for x in a.warn_at]
    except ValueError:
        tiers = [-1.0]
    need(
        all(0 < t < 1 for t in tiers),
        "alerts.warn_at are fractions of each limit in (0, 1), e.g. [0.8, 0.9]",
        a.warn_at,
    )
    need(a.rate_limit >= 0, "alerts.rate_limit must be >= 0 seconds", a.rate_limit)
    need(
        a.webhook_format in ("json", "slack", "discord"),
        "alerts.webhook_format must be json, slack or discord",
        repr(a.webhook_format),
    )
    for name in ("webhook_min_level", "email_min_level"):
        need(
            getattr(a, name) in ("info", "warning", "error", "critical"),
            f"alerts.{name} must be info, warning, error or critical",
            repr(getattr(a, name)),
        )
    need(cfg.ops.log_retention_days >= 1, "ops.log_retention_days must be >= 1", cfg.ops.log_retention_days)
    need(cfg.ops.backup_keep >= 1, "ops.backup_keep must be >= 1", cfg.ops.backup_keep)
    need(cfg.ops.min_free_disk_mb >= 0, "ops.min_free_disk_mb must be >= 0", cfg.ops.min_free_disk_mb)
    need(0 < cfg.ops.max_memory_pct <= 1, "ops.max_memory_pct is a fraction in (0, 1]", cfg.ops.max_memory_pct)


def resolve_secret(env_name: str, file_name: str, env: Mapping[str, str] | None = None) -> Secret | None:
    """Read a credential from a secret file (if named) or the environment; None if absent."""
    env = os.environ if env is None else env
    if file_name:
        p = Path(file_name).expanduser()
        try:
            return Secret(p.read_text(encoding="utf-8").strip())
        except OSError as err:
            raise BridgeConfigError(
                "cannot read the secret file", found=f"{p} ({err.strerror})", fix="check the path and its permissions"
            ) from None
    value = env.get(env_name, "") if env_name else ""
    return Secret(value) if value else None


def _secret_error(key: str) -> BridgeConfigError:
    return BridgeConfigError(
        f"secrets are not read from the config file ({key!r})",
        fix="set BRIDGE_SMTP_PASSWORD / BRIDGE_WEBHOOK_TOKEN in the environment, or name a secret file with "
        "[notify] smtp_password_file / webhook_token_file",
    )


def _hint(key: str, known: list[str]) -> str:
    return suggest(key, known, then=f"known: {', '.join(known)}")
