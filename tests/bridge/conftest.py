"""Fixtures for the bridge tests: bundled bars, the fake gateway, harnesses, ib_async log checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.fakegw import FakeGateway
from tests.fakegw.fixtures import client_decode_errors  # noqa: F401

from ._harness import BridgeHarness


@pytest.fixture(scope="session")
def spy_daily() -> pd.DataFrame:
    """Bundled SPY daily bars (UTC midnight stamps), 2021 onwards."""
    from quantlab import data

    frame = data.load("SPY", interval="1d")
    return frame.loc[frame.index >= pd.Timestamp("2021-01-01", tz="UTC"), ["open", "high", "low", "close", "volume"]]


@pytest.fixture
def gw(fake_gateway_factory: Callable[..., FakeGateway]) -> FakeGateway:
    """A fake IB Gateway with a $100,000 paper account."""
    return fake_gateway_factory(cash=100_000.0)


@pytest.fixture
def harness(gw: FakeGateway, spy_daily: pd.DataFrame, tmp_path: Path) -> Iterator[Callable[..., BridgeHarness]]:
    """Build BridgeHarness objects (closed afterwards)."""
    made: list[BridgeHarness] = []

    def make(seed: int = 60, frame: pd.DataFrame | None = None, **sections: object) -> BridgeHarness:
        h = BridgeHarness(
            gw, spy_daily if frame is None else frame, tmp_path / f"ledger{len(made)}.sqlite", seed, **sections
        )  # type: ignore[arg-type]
        made.append(h)
        return h

    yield make
    for h in made:
        try:
            h.close()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
