"""Protective child orders of an entry: stop, take-profit and trailing stop (issue 12 item 5).

An entry goes to the broker as a bracket: the parent plus its children in one OCA group,
so the position is protected at the broker even if the bridge dies. This module is the
ledger side: which children an entry gets from the strategy's exit rules (the engine's
``sl_stop``, ``tp_stop``, ``sl_trail``, with the engine's own checks), their prices, and
their **deterministic refs, derived from the parent's ref** (``<parent>:sl``, ``:tp``,
``:tr``): a restart or a reconnect recognises every child it already recorded, so a child
is never sent twice; the OCA group is ``<parent>:oca`` for the same reason.

Prices are rounded to the cent, away from the entry (a stop never ends up closer than the
rule says). A trailing stop goes out as a plain STP at research's level (``aux_price``), moved by
the bridge after each completed bar (:mod:`bridge.trailing`); its ``trail_pct`` (percent, not
fraction) stays recorded for the ratchet and the re-attach.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from bridge.brokers.protocol import OrderRequest
from bridge.errors import BridgeError
from quantlab.engine.exits import apply_exits, check_exit_values
from quantlab.engine.params import parse_fixed, parse_params
from quantlab.engine.strategy import StrategySpec
from quantlab.errors import ParameterError

#: role -> (orderRef suffix, exit rule, IB order type); in the order they are attached.
ROLES: dict[str, tuple[str, str, str]] = {
    "stop": ("sl", "sl_stop", "STP"),
    "take_profit": ("tp", "tp_stop", "LMT"),
    "trail": ("tr", "sl_trail", "STP"),  # research's level, moved by the bridge (bridge/trailing.py)
}
_BY_SUFFIX = {suffix: role for role, (suffix, _, _) in ROLES.items()}
#: The exit rules the bridge places as resting children.
RESTING_RULES: tuple[str, ...] = tuple(rule for _, rule, _ in ROLES.values())
#: The rules the runner times itself (bridge/runtime/time_exits.py): a market exit after
#: ``max_hold`` bars, limit entries cancelled after ``limit_expiry`` bars. ``limit_ticks`` is
#: research's fill-probability model: accepted, applied by the replay's sim broker, while a live
#: broker fills by its own rules.
TIMED_RULES: tuple[str, ...] = ("max_hold", "entry_limit", "limit_expiry", "limit_ticks")


class ProtectionError(BridgeError):
    """Exit rules that cannot become protective orders (nothing is recorded or sent)."""


def child_ref(parent_ref: str, role: str) -> str:
    """The child's orderRef: the parent's plus the role's suffix (``ql:...:sl``)."""
    if role not in ROLES:
        raise ProtectionError("unknown protective order role", found=repr(role), fix=f"use one of {', '.join(ROLES)}")
    return f"{parent_ref}:{ROLES[role][0]}"


def oca_group(parent_ref: str) -> str:
    """The bracket's one-cancels-all group: one fill of a child cancels its siblings."""
    return f"{parent_ref}:oca"


def split_ref(ref: str) -> tuple[str, str] | None:
    """``(parent_ref, role)`` of a child's orderRef, or None for any other ref. A re-attached
    child (``<parent>:sl~2``, :mod:`bridge.protect_plan`) has the same parent and role."""
    parent, _, suffix = ref.rpartition(":")
    role = _BY_SUFFIX.get(suffix.split("~", 1)[0])
    return (parent, role) if parent and role else None


def children(parent: Mapping[str, Any], rules: Mapping[str, float], entry_price: float) -> list[dict[str, Any]]:
    """Ledger rows of the protective children of the entry order ``parent`` (a ledger row:
    ``order_ref``, ``symbol``, ``side``, ``quantity``, ``tif``...) for the exit ``rules`` that are set.

    Raises:
        ProtectionError: a rule out of range (the engine's check), or no usable entry price.
    """
    wanted = {role: float(rules[rule]) for role, (_, rule, _) in ROLES.items() if rules.get(rule) is not None}
    if not wanted:
        return []
    for role, value in wanted.items():
        try:
            check_exit_values(ROLES[role][1], [value])
        except ParameterError as err:
            raise ProtectionError(err.what, found=err.found, fix=err.fix) from None
    if not (math.isfinite(entry_price) and entry_price > 0):
        raise ProtectionError(
            "protective orders need the entry's price",
            found=repr(entry_price),
            fix="pass the expected fill (or the limit) of the entry",
        )
    long = parent["side"] == "BUY"
    rows = []
    for role, value in wanted.items():
        _, rule, order_type = ROLES[role]
        row: dict[str, Any] = {
            "order_ref": child_ref(str(parent["order_ref"]), role),
            "parent_ref": parent["order_ref"],
            "role": role,
            "oca_group": oca_group(str(parent["order_ref"])),
            "side": "SELL" if long else "BUY",
            "order_type": order_type,
            "limit_price": None,
            "aux_price": None,
            "trail_pct": None,
        }
        if role == "stop":
            row["aux_price"] = _cents(entry_price * (1 - value) if long else entry_price * (1 + value), down=long)
        elif role == "take_profit":
            row["limit_price"] = _cents(entry_price * (1 + value) if long else entry_price * (1 - value), down=not long)
        else:  # a STP at research's level from the entry; trail_pct kept for the ratchet and re-attach
            row["aux_price"] = _cents(entry_price * (1 - value) if long else entry_price * (1 + value), down=long)
            row["trail_pct"] = round(value * 100.0, 6)
        rows.append(
            {
                **{k: parent[k] for k in _INHERITED if k in parent},
                **row,
                "purpose": "protect",
                "reason": f"{role.replace('_', '-')} of {parent['order_ref']} ({rule}={value:g})",
            }
        )
    return rows


def exits_for_run(
    spec: StrategySpec,
    params: Any,
    mode: str,
    *,
    require_stop: bool = False,
    limit_orders: bool = False,
    allow_short: bool = False,
    limit_band: float = 0.0,
) -> StrategySpec:
    """``spec`` with the exit rules named in ``[strategy] params`` merged (the kernel ignores them;
    the bridge places them as brackets or times them), refusing what the bridge cannot do.

    Raises:
        ProtectionError: a rule the bridge does not know, ``[orders] type = "limit"`` with resting
            rules or ``entry_limit`` (a timed-out limit's market replacement carries no children
            yet), ``entry_limit`` with ``allow_short`` (a reversal's limit side is not wired), an
            ``entry_limit`` beyond the risk gate's ``limit_band_pct`` (rule 7 would reject every
            entry), or ``require_stop`` without ``sl_stop``/``sl_trail``.
    """
    try:
        merged, _ = apply_exits(spec, None, params or None)
    except ParameterError as err:
        raise ProtectionError(err.what, found=err.found, fix=err.fix) from None
    names = [p.name for p in merged.exit_params]
    other = [n for n in names if n not in RESTING_RULES + TIMED_RULES]
    if other:
        raise ProtectionError(
            "the bridge does not place these exit rules",
            found=", ".join(other),
            fix=f"drop them from [strategy] params; the bridge places {', '.join(RESTING_RULES + TIMED_RULES)}",
        )
    resting = [n for n in names if n in RESTING_RULES]
    if limit_orders and (resting or "entry_limit" in names):
        raise ProtectionError(
            'exit rules with [orders] type = "limit": a limit entry that times out is replaced by a market '
            "order that carries no protective orders yet",
            found=", ".join(resting + [n for n in names if n == "entry_limit"]),
            fix='use [orders] type = "market" with exit rules (entry_limit makes research\'s limit entries)',
        )
    values = _given(merged, params)
    if "entry_limit" in values and allow_short:
        raise ProtectionError(
            "entry_limit with [sizing] allow_short: a reversal's new side as a limit (research closes the old "
            "side at the open and works a limit for the new one) is not wired in the bridge",
            found=f"entry_limit={values['entry_limit']:g}, allow_short = true",
            fix="drop entry_limit, or set [sizing] allow_short = false",
        )
    if "entry_limit" in values and 0 < limit_band < values["entry_limit"]:
        raise ProtectionError(
            "entry_limit puts every limit entry further from the price than the risk gate's limit band "
            "(rule 7 would reject each one)",
            found=f"entry_limit={values['entry_limit']:g}, [risk] limit_band_pct={limit_band:g}",
            fix=f"raise [risk] limit_band_pct above {values['entry_limit']:g}, or lower entry_limit",
        )
    if require_stop and not {"sl_stop", "sl_trail"} & set(names):
        raise ProtectionError(
            "[risk] require_stop / max_loss_per_trade need every entry to carry a stop, and the strategy has "
            "no sl_stop or sl_trail",
            found=f"params {params!r}",
            fix="add e.g. sl_stop=0.05 to [strategy] params",
        )
    return merged


def _given(spec: StrategySpec, params: Any) -> dict[str, float]:
    """The exit rules' resolved values (defaults for rules named without one)."""
    names = {p.name for p in spec.exit_params}
    if not names:
        return {}
    resolved = parse_params(spec, parse_fixed(spec, params or None))
    return {n: float(resolved[n]) for n in names if n in resolved}


def rules_of(spec: StrategySpec, params: Mapping[str, float]) -> dict[str, float]:
    """The exit rules among resolved ``params`` (rule name -> value)."""
    return {p.name: float(params[p.name]) for p in spec.exit_params if p.name in RESTING_RULES}


def child_request(row: Mapping[str, Any]) -> OrderRequest:
    """The broker request of a protective child's ledger row (one shape for every broker)."""
    return OrderRequest(
        str(row["order_ref"]),
        str(row["symbol"]),
        row["side"],
        float(row["quantity"]),
        row["order_type"],
        row.get("limit_price"),
        str(row.get("tif") or "GTC"),
        aux_price=row.get("aux_price"),
        trail_pct=row.get("trail_pct"),
        parent_ref=row["parent_ref"],
        oca_group=row.get("oca_group"),
        transmit=bool(row.get("transmit", True)),
    )


#: Fields a child takes from its parent (same run, strategy, symbol, size, bar and day).
_INHERITED = ("run_id", "strategy", "symbol", "bar_time", "quantity", "tif", "status", "day")


def stop_cents(price: float, *, long: bool) -> float:
    """A protective stop's level rounded to the cent away from the market (down for a long's)."""
    return _cents(price, down=long)


def _cents(price: float, *, down: bool) -> float:
    scaled = price * 100.0
    return (math.floor(scaled + 1e-9) if down else math.ceil(scaled - 1e-9)) / 100.0
