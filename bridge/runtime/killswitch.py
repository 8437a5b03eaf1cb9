"""The runner's kill switch: latch, cancel the open orders, optionally flatten.

Without flatten the protective children of open positions stay at the broker (``kept``,
:mod:`bridge.stop_plan`); with flatten everything is cancelled before the positions are closed.

One path for every trigger (``bridge stop``, the daily loss limit, a tripped breaker, an
exit the broker keeps rejecting). The work itself is ``bridge.control.emergency_stop``
(also used by ``bridge stop`` when no runner is alive); this adds the runner's side: the
alert, the prices of its bars, and what to redo if the gateway drops meanwhile.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from bridge.control import emergency_stop
from bridge.errors import BrokerDisconnected
from bridge.runtime.context import Context


def kill(
    ctx: Context, reason: str, *, flatten: bool, kind: str, tag: pd.Timestamp, shutdown: bool = False
) -> dict[str, Any]:
    """Latch the kill switch and cancel (and flatten); returns ``emergency_stop``'s result.
    A drop midway keeps the actions pending (``state.stop_pending``) and re-raises."""
    st = ctx.state
    ctx.alert("kill_switch", f"KILL SWITCH: {reason}", "critical", flatten=flatten)
    prices = {s: w.last_price() for s, w in ctx.windows.items() if len(w)}
    try:
        result = emergency_stop(
            ctx.broker,
            ctx.ledger,
            flatten=flatten,
            symbols=ctx.symbols,
            strategy=ctx.spec.name,
            key=ctx.skey,
            tag=tag,
            reason=reason,
            kind=kind,
            now=ctx.clock.now,
            pump=ctx.pump,
            prices=prices,
            calendar=ctx.calendar,
            cancel_wait=ctx.cfg.orders.cancel_wait,
            run_id=ctx.run_id,
        )
    except BrokerDisconnected:
        # latched, but the cancel/flatten did not finish: the runner redoes them once reconnected
        st.stop_pending = {"flatten": flatten, "reason": reason, "kind": kind}
        raise
    if result["kept"]:
        ctx.alert("protection_kept", f"kill switch: {result['kept_text']} (they protect open positions)", "warning")
    if result.get("not_cancelled"):
        refs = ", ".join(f"{o['order_ref']} (client id {o['client_id']})" for o in result["not_cancelled"])
        ctx.alert(
            "kill_not_cancelled",
            f"kill switch: open orders of another client id NOT cancelled: {refs}; cancel them in TWS or run "
            "`bridge stop --client-id <their id>`",
            "critical",
        )
    st.working.clear()
    st.positions_dirty = True
    if shutdown:
        st.stop = True
    return result
