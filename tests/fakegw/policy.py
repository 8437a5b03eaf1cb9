"""Fill policies: how the fake gateway treats an incoming order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .contracts import Instrument
from .requests import OrderRequest

Mode = Literal["auto", "fill", "rest", "reject"]


@dataclass(frozen=True)
class FillPolicy:
    """What happens to an order.

    Modes:
        auto: market orders fill at once at ``price`` or the symbol's reference
            price; limit, stop and trailing orders fill when marketable, now or
            when the price path crosses them (fill prices: ``triggers``).
        fill: fill at once whatever the order type, at ``price``, else the
            reference price, else the order's limit price.
        rest: accept and never fill by itself (``FakeGateway.fill_order``
            still can).
        reject: answer error 201 ``Order rejected - reason:<reason>``.

    Args:
        price: fill price override for immediate fills.
        pieces: split each fill into this many executions.
        partial: execute only the first ``partial`` pieces, then keep the
            rest working (``Submitted`` with filled > 0).
        delay: seconds to wait before the first execution (wall clock; the
            only place the fake depends on time).
        interval: seconds between pieces.
        commission: fixed commission per execution instead of the schedule.
        reason: rejection text for ``reject``.
    """

    mode: Mode = "auto"
    price: float | None = None
    pieces: int = 1
    partial: int | None = None
    delay: float = 0.0
    interval: float = 0.0
    commission: float | None = None
    reason: str = "Simulated rejection by the fake gateway"

    def __post_init__(self) -> None:
        if self.pieces < 1:
            raise ValueError("pieces must be >= 1")
        if self.partial is not None and not 0 <= self.partial <= self.pieces:
            raise ValueError("partial must be between 0 and pieces")

    @classmethod
    def auto(cls, **kw: object) -> FillPolicy:
        return cls("auto", **kw)  # type: ignore[arg-type]

    @classmethod
    def fill(cls, price: float | None = None, **kw: object) -> FillPolicy:
        return cls("fill", price=price, **kw)  # type: ignore[arg-type]

    @classmethod
    def rest(cls) -> FillPolicy:
        return cls("rest")

    @classmethod
    def reject(cls, reason: str = "Simulated rejection by the fake gateway") -> FillPolicy:
        return cls("reject", reason=reason)


@dataclass
class PolicyRule:
    """A scripted policy for orders matching every given criterion."""

    policy: FillPolicy
    order_ref: str | None = None
    symbol: str | None = None
    action: str | None = None
    order_type: str | None = None
    once: bool = True

    def matches(self, req: OrderRequest, instrument: Instrument) -> bool:
        return (
            (self.order_ref is None or req.order_ref == self.order_ref)
            and (self.symbol is None or instrument.symbol == self.symbol.upper())
            and (self.action is None or req.action.upper() == self.action.upper())
            and (self.order_type is None or req.order_type.upper() == self.order_type.upper())
        )
