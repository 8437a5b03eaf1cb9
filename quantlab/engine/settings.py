"""Simulation settings: costs, sizing and cash as frozen dataclasses.

Loaded once (CLI flags or Python arguments) and passed down explicitly; the kernels get
the float64 vector from :meth:`SimConfig.to_array`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from quantlab.errors import ConfigError
from quantlab.kernels import layout as L

COST_MODELS = ("ib_fixed", "percent")
#: Largest initial cash accepted: share counts stay exact in float64 far beyond it.
MAX_CASH = 1e12
#: Largest percentage fee accepted (as a fraction of trade value).
MAX_PCT_FEE = 0.05
SIZING_MODES = ("all", "fraction", "cash", "vol_target")
#: US regulatory fees on sells as last checked (docs/research.md, "Costs"): SEC Section 31
#: at $27.80 per million (the rate effective 2024-05-22; it was set to $0.00 from
#: 2025-05-14 and is reset each fiscal year) and FINRA's TAF at $0.000166 per share, at most
#: $8.30 per trade (effective 2024-01-01). Check the current rates before relying on them.
US_REG_FEES = {"sec_fee_rate": 27.80e-6, "taf_per_share": 0.000166, "taf_max": 8.30}


@dataclass(frozen=True)
class Costs:
    """Commission and slippage.

    Attributes:
        model: ``"ib_fixed"`` (Interactive Brokers fixed: per share with a per-order
            minimum and a cap as a fraction of trade value) or ``"percent"``.
        per_share: IB fixed rate per share (USD 0.005).
        min_fee: IB minimum per order (USD 1.00).
        max_pct: IB maximum per order as a fraction of trade value (0.01 = 1%).
        pct_fee: percent model: fraction of trade value (0.001 = 10 bps).
        fixed_fee: extra fixed amount per order, either model.
        slippage_bps: price concession per fill in basis points (buys pay more, sells get less).
        half_spread_bps: half the bid-ask spread, paid on every fill like slippage (bps).
        spread_bps: per-symbol full bid-ask spread in bps; half of it is paid per fill, in
            place of ``half_spread_bps`` for the symbols it names.
        sec_fee_rate: SEC Section 31 fee as a fraction of sell notional (off by default;
            :data:`US_REG_FEES` holds the documented rate).
        taf_per_share: FINRA Trading Activity Fee per share sold (off by default).
        taf_max: cap of the TAF per trade (USD).
        borrow_rate: annual short borrow rate, charged each bar on the short notional at
            the close (scaled by the bar interval).
    """

    model: str = "ib_fixed"
    per_share: float = 0.005
    min_fee: float = 1.0
    max_pct: float = 0.01
    pct_fee: float = 0.0
    fixed_fee: float = 0.0
    slippage_bps: float = 1.0
    half_spread_bps: float = 0.0
    spread_bps: Mapping[str, float] = field(default_factory=dict)
    sec_fee_rate: float = 0.0
    taf_per_share: float = 0.0
    taf_max: float = 8.30
    borrow_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.model not in COST_MODELS:
            raise ConfigError("unknown cost model", found=repr(self.model), fix=f"use one of {COST_MODELS}")
        for symbol, bps in dict(self.spread_bps).items():
            if not (isinstance(bps, (int, float)) and math.isfinite(bps) and 0 <= bps < 10_000):
                raise ConfigError(
                    f"spread of {symbol} must be a number of basis points in [0, 10000)",
                    found=bps,
                    fix="e.g. SPY:1,QQQ:2",
                )
        for name in ("half_spread_bps", "sec_fee_rate", "taf_per_share", "taf_max", "borrow_rate"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"cost setting {name} must be a finite number >= 0", found=value)
        if self.sec_fee_rate > 0.001:
            raise ConfigError(
                "sec_fee_rate is a fraction of the sell notional and above 0.001 this looks like dollars per million",
                found=self.sec_fee_rate,
                fix="pass $27.80 per million as 0.0000278",
            )
        if self.borrow_rate > 1:
            raise ConfigError("borrow_rate is an annual fraction (0.03 = 3%)", found=self.borrow_rate, fix="e.g. 0.03")
        for name in ("per_share", "min_fee", "max_pct", "pct_fee", "fixed_fee", "slippage_bps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"cost setting {name} must be a finite number >= 0", found=value)
        if self.slippage_bps >= 10_000:
            raise ConfigError("slippage_bps must be below 10000 (100%)", found=self.slippage_bps)
        if self.slippage_bps + self.half_spread_bps >= 10_000:
            raise ConfigError("slippage plus half-spread must be below 10000 bps", found=self.half_spread_bps)
        if self.pct_fee > MAX_PCT_FEE or self.max_pct > MAX_PCT_FEE:
            raise ConfigError(
                "percentage fees are fractions of trade value, and above 5% this looks like a percent/fraction mix-up",
                found=f"pct_fee={self.pct_fee:g}, max_pct={self.max_pct:g}",
                fix="pass 0.001 for 0.1% (10 bps), e.g. --fee-pct 0.001",
            )

    def check_symbols(self, symbols: Sequence[str]) -> None:
        """Refuse a per-symbol spread for a symbol the run does not trade: it would apply to
        nothing while looking applied (a typo such as QQQ for SPY)."""
        stray = sorted(set(dict(self.spread_bps)) - set(symbols))
        if stray:
            raise ConfigError(
                "a per-symbol spread names a symbol this run does not trade",
                found=f"{', '.join(stray)} (run symbols: {', '.join(symbols)})",
                fix="spell the spread for a run symbol, e.g. --spread " + f"{symbols[0]}:1" if symbols else "drop it",
            )

    def concession(self, symbol: str | None = None) -> float:
        """Price concession per fill as a fraction: slippage plus the half-spread."""
        spreads = dict(self.spread_bps)
        half = spreads[symbol] / 2.0 if symbol is not None and symbol in spreads else self.half_spread_bps
        return (self.slippage_bps + half) / 1e4


@dataclass(frozen=True)
class Sizing:
    """How a target exposure becomes shares.

    Attributes:
        mode: ``"all"`` (all equity), ``"fraction"`` (``value`` x equity), ``"cash"``
            (``value`` dollars), ``"vol_target"`` (equity x ``value`` / realised vol).
        value: fraction, cash amount or annualised volatility target (by mode).
        max_leverage: cap on the volatility-target multiplier (1 = no margin).
        vol_window: bars of log returns for the realised volatility (vol_target only).
        whole_shares: trade whole shares (as IB fills stocks); False allows fractions.
        allow_short: let negative targets open short positions.
    """

    mode: str = "all"
    value: float = 1.0
    max_leverage: float = 1.0
    vol_window: int = 20
    whole_shares: bool = True
    allow_short: bool = False

    def __post_init__(self) -> None:
        if self.mode not in SIZING_MODES:
            raise ConfigError("unknown sizing mode", found=repr(self.mode), fix=f"use one of {SIZING_MODES}")
        if not (math.isfinite(self.value) and self.value > 0):
            raise ConfigError("sizing value must be a positive number", found=self.value)
        if self.mode == "fraction" and self.value > 1:
            raise ConfigError(
                "fraction sizing above 1 would need margin", found=self.value, fix="use a fraction in (0, 1]"
            )
        if not (0 < self.max_leverage <= 1):
            raise ConfigError(
                "max_leverage must be in (0, 1]: the simulator models a cash account without margin",
                found=self.max_leverage,
            )
        if self.vol_window < 2:
            raise ConfigError("vol_window must be at least 2 bars", found=self.vol_window)


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator needs besides prices and targets."""

    init_cash: float = 100_000.0
    costs: Costs = field(default_factory=Costs)
    sizing: Sizing = field(default_factory=Sizing)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.init_cash) and 0 < self.init_cash <= MAX_CASH):
            raise ConfigError(
                f"initial cash must be positive and at most {MAX_CASH:.0e}",
                found=self.init_cash,
                fix="e.g. --cash 100000",
            )

    def to_array(self, symbol: str | None = None) -> np.ndarray:
        """The float64 vector laid out by :mod:`quantlab.kernels.layout` (``symbol``
        picks its spread from ``costs.spread_bps``)."""
        cfg = np.zeros(L.CFG_LEN)
        c, s = self.costs, self.sizing
        cfg[L.C_INIT_CASH] = self.init_cash
        cfg[L.C_MODEL] = L.COST_IB_FIXED if c.model == "ib_fixed" else L.COST_PERCENT
        cfg[L.C_PER_SHARE] = c.per_share
        cfg[L.C_MIN_FEE] = c.min_fee
        cfg[L.C_MAX_PCT] = c.max_pct
        cfg[L.C_PCT_FEE] = c.pct_fee
        cfg[L.C_FIXED_FEE] = c.fixed_fee
        cfg[L.C_SLIPPAGE] = c.concession(symbol)
        cfg[L.C_SEC_FEE] = c.sec_fee_rate
        cfg[L.C_TAF_PER_SHARE] = c.taf_per_share
        cfg[L.C_TAF_MAX] = c.taf_max
        cfg[L.C_BORROW] = c.borrow_rate
        cfg[L.C_SIZING] = {"all": L.SIZE_ALL, "fraction": L.SIZE_FRACTION, "cash": L.SIZE_CASH}.get(
            s.mode, L.SIZE_VOL_TARGET
        )
        cfg[L.C_SIZE_VALUE] = s.value
        cfg[L.C_MAX_LEVERAGE] = s.max_leverage
        cfg[L.C_WHOLE] = 1.0 if s.whole_shares else 0.0
        cfg[L.C_ALLOW_SHORT] = 1.0 if s.allow_short else 0.0
        return cfg

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["costs"]["spread_bps"] = dict(self.costs.spread_bps)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        return cls(
            init_cash=float(data.get("init_cash", 100_000.0)),
            costs=Costs(**data.get("costs", {})),
            sizing=Sizing(**data.get("sizing", {})),
        )


class InertSettingWarning(UserWarning):
    """A setting was given that cannot change this run's numbers (the CLIs print the note themselves)."""


def inert_settings(sim: SimConfig, stacklevel: int = 3) -> dict[str, str]:
    """Notes for settings given a value that cannot change the run's numbers, by field name.

    A borrow rate is charged on short positions only: on a run that cannot short it looks
    applied while changing nothing. The notes go into ``summary.json`` (``inert_settings``)
    and, once joined, into an :class:`InertSettingWarning` at the caller of the public
    function (``stacklevel``), like the short-sample notes.
    """
    notes: dict[str, str] = {}
    if sim.costs.borrow_rate > 0 and not sim.sizing.allow_short:
        notes["borrow_rate"] = (
            f"inert: borrow rate {sim.costs.borrow_rate:g} is charged on short positions only and this run is "
            "long-only (allow_short is off; the CLI never shorts), so it changes no number; drop it, or allow "
            "shorts with Sizing(allow_short=True) from Python"
        )
    if notes:
        warnings.warn("; ".join(f"{k}: {v}" for k, v in notes.items()), InertSettingWarning, stacklevel=stacklevel)
    return notes


def parse_sizing(text: str, *, whole_shares: bool = True, vol_window: int = 20) -> Sizing:
    """Parse ``all``, ``fraction:0.5``, ``cash:10000`` or ``vol_target:0.15``."""
    mode, _, value = text.partition(":")
    mode = mode.strip()
    if mode not in SIZING_MODES:
        raise ConfigError(
            "unknown sizing", found=repr(text), fix="use all, fraction:0.5, cash:10000 or vol_target:0.15"
        )
    if mode == "all":
        return Sizing("all", 1.0, whole_shares=whole_shares, vol_window=vol_window)
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(
            f"sizing {mode} needs a number after the colon", found=repr(text), fix=f"e.g. {mode}:0.5"
        ) from None
    return Sizing(mode, number, whole_shares=whole_shares, vol_window=vol_window)


def make_sim_config(
    cash: float = 100_000.0,
    costs: Costs | Mapping[str, Any] | None = None,
    sizing: Sizing | Mapping[str, Any] | None = None,
) -> SimConfig:
    """SimConfig from plain values (as the CLI and notebooks pass them)."""
    c = costs if isinstance(costs, Costs) else Costs(**(costs or {}))
    s = sizing if isinstance(sizing, Sizing) else Sizing(**(sizing or {}))
    return SimConfig(init_cash=float(cash), costs=c, sizing=s)
