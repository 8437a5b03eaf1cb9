"""What the fake refuses in a placeOrder before it touches any state.

IB's exact texts for these are not documented; the fake takes the harsher reading:
a new order that cannot work is rejected (error 201, the client cancels the trade),
a modify that cannot work is refused with 321 and the order keeps working unchanged
(ib_async logs 321 as a warning and marks the trade ``ValidationError`` until the
next status).
"""

from __future__ import annotations

from .requests import OrderRequest

_NEEDS_LIMIT = {"LMT", "STP LMT", "LOC", "LOO"}
_NEEDS_STOP = {"STP", "STP LMT"}


def missing_price(req: OrderRequest) -> str | None:
    """Why ``req`` cannot work for lack of a price, or None."""
    kind = req.order_type.upper()
    if kind in _NEEDS_LIMIT and req.lmt_price is None:
        return f"{kind} order needs a limit price (lmtPrice)"
    if kind in _NEEDS_STOP and req.aux_price is None:
        return f"{kind} order needs a stop price (auxPrice)"
    if kind == "TRAIL" and not ((req.trailing_percent or 0) > 0 or (req.aux_price or 0) > 0):
        return "TRAIL order needs a trailing amount (auxPrice) or trailingPercent above 0"
    if req.quantity <= 0:
        return f"order quantity must be above 0, found {req.quantity}"
    return None


def parent_problem(req: OrderRequest, parent_status: str | None) -> str | None:
    """Why a child cannot attach to its parent (unknown, or cancelled), or None."""
    if not req.parent_id:
        return None
    if parent_status is None:
        return f"parent order {req.parent_id} is not found"
    if parent_status in ("Cancelled", "ApiCancelled", "Inactive"):
        return f"parent order {req.parent_id} is {parent_status}"
    return None
