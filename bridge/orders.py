"""From a target exposure to an order: sizing (the engine's kernels), prices, orderRefs.

Sizing is the backtest's, call for call: ``target_shares_nb(target, equity, close, vol,
cfg)`` with the equity marked at the decision bar's close, then buys cut to what cash
affords at the expected fill (``affordable_buy_nb``). The "last target acted on" rule
of ``quantlab/kernels/sim.py`` is applied by the runner.

orderRefs are deterministic: ``ql:<strategy>:<symbol>:<bar time>:<hash>`` where the
hash covers strategy, parameters, symbol, bar time and purpose. The same decision always
gets the same ref, so a restart recognises what it already sent.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quantlab.kernels.costs import fill_price_nb, order_fee_nb
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb

PREFIX = "ql:"


def strategy_key(name: str, params: Mapping[str, float]) -> str:
    """Identity of a strategy instance: its name and canonical parameters."""
    shown = ",".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items()))
    return f"{name}({shown})"


def order_ref(strategy: str, key: str, symbol: str, when: pd.Timestamp, purpose: str = "sig", attempt: int = 0) -> str:
    """Deterministic orderRef of one decision (``attempt`` > 0 after a void re-decision).

    ``key`` is :func:`strategy_key` (name and parameters): part of the hash, not of the text.
    """
    t = pd.Timestamp(when)
    t = t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")
    stamp = t.strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.sha256(f"{key}|{symbol}|{stamp}|{purpose}".encode()).hexdigest()[:8]
    base = f"{PREFIX}{strategy}:{symbol}:{stamp}:{digest}"
    return base if attempt == 0 else f"{base}~{attempt}"


def base_ref(ref: str) -> str:
    return ref.split("~", 1)[0]


@dataclass(frozen=True)
class Sizing:
    """The sizing outcome of one decision."""

    desired: float  # shares wanted after the order (NaN: cannot size yet)
    delta: float  # signed shares to trade (after the cash cut)


def size(
    target: float,
    equity: float,
    ref_price: float,
    vol: float,
    position: float,
    cash: float,
    fill_estimate: float,
    cfg: np.ndarray,
) -> Sizing:
    """Shares to trade so the position matches ``target`` (engine kernels, as in the backtest)."""
    desired = float(target_shares_nb(target, equity, ref_price, vol, cfg))
    if math.isnan(desired):
        return Sizing(desired, math.nan)
    delta = desired - position
    if delta > 0:
        delta = float(affordable_buy_nb(delta, cash, fill_estimate, cfg))
    return Sizing(desired, delta)


def expected_fill(side: str, qty: float, ref_price: float, cfg: np.ndarray) -> tuple[float, float]:
    """Expected fill price and fees of an order at ``ref_price``, with the sweep's costs.

    ``cfg`` is the symbol's cost vector (``SimConfig.to_array(symbol)``): the price moves by
    slippage plus the symbol's half-spread; fees are commission plus SEC fee and FINRA TAF
    on sells, exactly what the simulator charges.
    """
    buy = side == "BUY"
    px = float(fill_price_nb(ref_price, buy, cfg))
    return px, float(order_fee_nb(abs(qty), px, buy, cfg))


def equity_at(cash: float, positions: Mapping[str, float], marks: Mapping[str, float]) -> float:
    """Cash plus positions marked at ``marks`` (the decision bars' closes)."""
    return float(cash + sum(q * marks[s] for s, q in positions.items() if q))


def limit_price(side: str, ref: float, offset_bps: float, tick: float = 0.01) -> float:
    """A marketable-ish limit: ``ref`` moved by the offset toward paying more, on the tick grid."""
    if side == "BUY":
        return round(math.floor(ref * (1 + offset_bps / 1e4) / tick + 1e-9) * tick, 10)
    return round(math.ceil(ref * (1 - offset_bps / 1e4) / tick - 1e-9) * tick, 10)


def _fmt(value: float) -> str:
    return f"{int(value)}" if float(value).is_integer() else f"{value:g}"
