"""Data-farm outages, as IB reports them (``../shared/docs/tws-protocol-notes.md`` section 8).

IB sends 2103/2105 (market data / HMDS farm broken) and 2104/2106 (OK again) with reqId -1
to every connection; ib_async only logs them (2100-2199 are warnings). The notes do not say
what happens to requests meanwhile, so the fake models the harsher case: while the HMDS farm
is down a historical request gets **no answer at all** (the client's own timeout ends it),
and each live ``keepUpToDate`` subscription gets **10182** "Failed to request live updates
(disconnected)" and is dead: it never updates again, the client must request it anew.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import GatewayCore

FARM_CODES = {"market": (2103, 2104, "usfarm"), "hmds": (2105, 2106, "ushmds")}


def farm_down(core: GatewayCore, farm: str) -> None:
    broken, _, name = FARM_CODES[farm]
    label = "Market" if farm == "market" else "HMDS"
    for s in core.ready_sessions():
        s.send(s.msg.error(-1, broken, f"{label} data farm connection is broken:{name}"))
    if farm != "hmds":
        return
    core.bars.hmds_down = True
    for s in core.ready_sessions():
        for req_id in list(s.subs.history):
            del s.subs.history[req_id]
            s.send(s.msg.error(req_id, 10182, "Failed to request live updates (disconnected)."))


def farm_up(core: GatewayCore, farm: str) -> None:
    _, ok, name = FARM_CODES[farm]
    label = "Market" if farm == "market" else "HMDS"
    if farm == "hmds":
        core.bars.hmds_down = False
    for s in core.ready_sessions():
        s.send(s.msg.error(-1, ok, f"{label} data farm connection is OK:{name}"))
