"""Bracket chains and OCA groups: which orders move together. Pure look-ups over the state.

IB's rules (the TWS API "Bracket Orders" and "One Cancels All" pages), with the
harsher reading where they are silent:

- Children (``parentId``) are inactive until the parent has filled completely.
- Bracket siblings act as one OCA group that reduces (they protect one position).
- An ``ocaGroup`` spans the orders of one account with that name. ocaType 1 (and 0,
  ib_async's default) cancels the other members at the first execution; 2 and 3
  reduce them in proportion to the executed share of the executing order.
"""

from __future__ import annotations

from .state import GatewayState, Order


def children(state: GatewayState, order: Order) -> list[Order]:
    """The orders attached to ``order`` (same client, ``parentId`` = its id), by order id."""
    found = [
        o
        for o in state.orders.values()
        if o.client_id == order.client_id and o.req.parent_id == order.order_id and o is not order
    ]
    return sorted(found, key=lambda o: o.order_id)


def parent_filled(state: GatewayState, order: Order) -> bool:
    """True if ``order`` has no parent, or its parent is gone or completely filled."""
    if not order.req.parent_id:
        return True
    parent = state.orders.get((order.client_id, order.req.parent_id))
    return parent is None or parent.status == "Filled"


def oca_members(state: GatewayState, order: Order) -> list[Order]:
    """Orders cancelled or reduced with ``order``: its bracket siblings and its ocaGroup."""
    members: list[Order] = []
    if order.req.parent_id:
        parent = state.orders.get((order.client_id, order.req.parent_id))
        if parent is not None:
            members = [o for o in children(state, parent) if o is not order]
    if order.req.oca_group:
        members += [
            o
            for o in state.orders.values()
            if o is not order
            and o not in members
            and o.req.oca_group == order.req.oca_group
            and o.account == order.account
        ]
    return members


def cancels_at_once(order: Order, member: Order) -> bool:
    """True if an execution of ``order`` cancels ``member`` (ocaType 0/1 of a shared group)."""
    group = order.req.oca_group
    return bool(group) and order.req.oca_type in (0, 1) and member.req.oca_group == group


def reduced_quantity(order: Order, member: Order, executed: float) -> float:
    """``member``'s quantity after ``order`` executed ``executed`` more shares.

    Proportional to the quantities the client gave (``base_qty``), so a 200-share stop
    in a group with a 100-share target loses 2 shares per share of the target.
    """
    cut = executed * member.base / order.base if order.base else member.req.quantity
    new_qty = member.req.quantity - cut
    if float(member.base).is_integer() and float(order.base).is_integer():
        new_qty = float(round(new_qty))
    return new_qty
