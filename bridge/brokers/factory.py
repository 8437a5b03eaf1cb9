"""Which broker a run uses, chosen by the config's mode.

``paper`` and ``live`` talk to the IB gateway (:class:`~bridge.brokers.ib.IBBroker`);
``replay`` fills against recorded bars (:class:`~bridge.brokers.sim.SimBroker`). A new
broker implements :class:`~bridge.brokers.protocol.Broker` and is added here.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.brokers.protocol import Broker
from bridge.brokers.sim import SimBroker
from bridge.clock import Clock
from bridge.config import BridgeConfig, GatewayConfig
from bridge.errors import BridgeConfigError


def make_broker(
    cfg: BridgeConfig,
    *,
    gateway: GatewayConfig | None = None,
    clock: Clock | None = None,
    cash: float = 0.0,
    symbols: Sequence[str] = (),
) -> Broker:
    """The broker for ``cfg.mode``; ``clock``/``cash``/``symbols`` are the replay's. A ``gateway``
    (``bridge stop`` connecting itself: the last run's gateway, another client id) always means
    the IB gateway, whatever the mode."""
    if cfg.mode == "replay" and gateway is None:
        if clock is None:
            raise BridgeConfigError(
                "a replay broker needs the replay's clock", found="clock=None", fix="pass clock= (bridge.replay does)"
            )
        return SimBroker(cfg.sim_config(cash), clock, cash=cash, symbols=list(symbols))
    # on demand: ib_async costs start-up time a replay does not need
    from bridge.brokers.ib import IBBroker

    return IBBroker(gateway or cfg.gateway, use_rth=cfg.data.use_rth, what_to_show=cfg.data.what_to_show)
