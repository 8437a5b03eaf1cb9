"""Which connection sees which orders, as IB documents it (not as a client would like).

IB keys orders by ``(clientId, orderId)``; only the placing client gets their live
updates and only it can cancel or modify them (``reqGlobalCancel`` excepted):

- ``reqOpenOrders`` (5): the calling client's open orders. Client 0 also gets the
  manual (TWS) orders and binds them: they take a negative order id and client 0
  receives their updates from then on.
- ``reqAutoOpenOrders(True)`` (15, client 0 only): manual orders placed later are
  bound to client 0 as they are created. Other clients get error 321 and nothing.
- ``reqAllOpenOrders`` (16): every open order of every client and TWS, once, without
  binding (no live updates follow for orders of other clients).
- ``reqCompletedOrders(apiOnly)`` (99): completed orders of every client (and TWS
  unless ``apiOnly``); they carry no orderId/clientId.
- ``reqExecutions`` (7): every client's executions of the day; the filter's clientId
  (0 or empty: no filter) narrows them. Live execDetails go to the owner only.

A gateway restart keeps orders and executions (they live at IB) but restarts the
order-id sequence: ids of orders from before the restart are offered again, and
reusing the id of a completed order gets error 103.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .contracts import ContractSpec
from .requests import OrderRequest
from .state import GatewayState, Order

if TYPE_CHECKING:
    from .core import GatewayCore
    from .policy import FillPolicy

#: ``Order.client_id`` of a manual order placed in TWS and not bound to an API client.
TWS = -1


def open_orders_for(state: GatewayState, client_id: int, all_clients: bool) -> Iterator[Order]:
    """The open orders a reqOpenOrders (or reqAllOpenOrders) reply lists, binding for client 0."""
    for o in list(state.orders.values()):
        if o.is_done or o.held:
            continue
        if all_clients or o.client_id == client_id:
            yield o
        elif client_id == 0 and o.client_id == TWS:
            bind(state, o)
            yield o


def completed_for(state: GatewayState, api_only: bool) -> Iterator[Order]:
    """The completed orders a reqCompletedOrders reply lists (every client's)."""
    for o in state.orders.values():
        if o.is_done and not (api_only and o.manual):
            yield o


def bind(state: GatewayState, order: Order) -> None:
    """Bind a manual order to client 0: it gets the next negative order id."""
    state.orders.pop(order.key, None)
    state.next_bound_id -= 1
    order.client_id, order.order_id = 0, state.next_bound_id
    state.orders[order.key] = order


def message_ids(order: Order) -> tuple[int, int]:
    """``(orderId, clientId)`` as the wire shows them: an unbound manual order has 0 and 0."""
    if order.client_id == TWS:
        return 0, 0
    return order.order_id, order.client_id


def manual_order(
    core: GatewayCore,
    symbol: str,
    action: str,
    quantity: float,
    order_type: str,
    lmt_price: float | None,
    order_ref: str,
    policy: FillPolicy | None,
) -> Order:
    """Place a TWS (manual) order; bound to client 0 at once if it asked for auto-binding."""
    inst = core.catalogue.by_symbol(symbol)
    if inst is None:
        raise LookupError(f"unknown symbol {symbol}; add_instrument first")
    req = OrderRequest(
        0,
        ContractSpec(inst.con_id, inst.symbol, "STK", exchange="SMART", currency="USD"),
        action.upper(),
        float(quantity),
        order_type,
        lmt_price,
        None,
        "DAY",
        "",
        "",
        "O",
        0,
        order_ref,
        True,
        0,
        False,
        False,
    )
    state = core.state
    order = Order(
        client_id=TWS,
        order_id=state.new_perm_id(),
        perm_id=0,
        instrument=inst,
        req=req,
        account=state.default_account,
        placed_at=core.now(),
        policy=policy or core.default_policy,
        manual=True,
        epoch=state.epoch,
    )
    order.perm_id = order.order_id  # unbound manual orders are keyed by permId, as IB clients do
    state.orders[order.key] = order
    owner = core.session_for(0)
    if owner is not None and getattr(owner, "auto_bind", False):
        bind(state, order)
    order.status = "Submitted"
    core.engine.notify(order)
    core.engine.evaluate(order, placement=True)
    return order
