"""The broker factory: the config's mode picks the broker; a replay needs its clock."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from bridge.brokers.factory import make_broker
from bridge.brokers.ib import IBBroker
from bridge.brokers.sim import SimBroker
from bridge.clock import ManualClock
from bridge.config import GatewayConfig
from bridge.errors import BridgeConfigError

from ._harness import bridge_config


def test_paper_and_live_talk_to_the_gateway(tmp_path: Path) -> None:
    cfg = bridge_config(None, tmp_path / "l.sqlite")
    for mode in ("paper", "live"):
        broker = make_broker(dataclasses.replace(cfg, mode=mode))
        assert isinstance(broker, IBBroker) and broker.cfg == cfg.gateway and not broker.is_connected()


def test_replay_fills_against_bars_with_the_configured_costs(tmp_path: Path) -> None:
    cfg = dataclasses.replace(bridge_config(None, tmp_path / "l.sqlite"), mode="replay")
    broker = make_broker(
        cfg, clock=ManualClock(pd.Timestamp("2024-01-02 14:30", tz="UTC")), cash=50_000.0, symbols=["SPY"]
    )
    assert isinstance(broker, SimBroker)
    broker.connect()
    assert broker.account().cash == 50_000.0


def test_replay_without_a_clock_is_a_config_error(tmp_path: Path) -> None:
    cfg = dataclasses.replace(bridge_config(None, tmp_path / "l.sqlite"), mode="replay")
    with pytest.raises(BridgeConfigError, match="clock"):
        make_broker(cfg)


def test_a_gateway_override_means_the_ib_gateway_whatever_the_mode(tmp_path: Path) -> None:
    cfg = dataclasses.replace(bridge_config(None, tmp_path / "l.sqlite"), mode="replay")
    gateway = GatewayConfig(port=4010, client_id=8)
    broker = make_broker(cfg, gateway=gateway)  # `bridge stop` connecting itself
    assert isinstance(broker, IBBroker) and broker.cfg is gateway
