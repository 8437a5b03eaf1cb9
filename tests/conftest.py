"""Shared fixtures: the vendored real market data, temporary stores, seeded RNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests import fixtures

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("QUANTLAB_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


#: Optional: the full shared data folder beside the repository (never required).
SHARED_DATA = _shared_root() / "data"


@pytest.fixture(scope="session")
def real_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The vendored real market data (``tests/fixtures``), unpacked once per session.

    Same layout as ``../shared/data`` (``daily/SPY.csv``, ``intraday/...``,
    ``actions/...``), so the suite runs on a fresh clone with nothing beside it.
    """
    return fixtures.unpack(tmp_path_factory.mktemp("real_data"))


@pytest.fixture(scope="session")
def shared_data(real_data: Path) -> Path:
    """Old name of :func:`real_data` (kept so tests written against it keep working)."""
    return real_data


@pytest.fixture(scope="session")
def shared_extra() -> Path:
    """The full ``../shared/data`` (or ``$QUANTLAB_SHARED/data``) for optional extra cases.

    Skips the test when the folder is absent: nothing required may depend on it.
    """
    if not SHARED_DATA.is_dir():
        pytest.skip(f"optional: no shared data at {SHARED_DATA} (set QUANTLAB_SHARED to add these cases)")
    return SHARED_DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261121)


@pytest.fixture(autouse=True)
def _isolate_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's reports folder and env overrides."""
    monkeypatch.delenv("QUANTLAB_STORE", raising=False)
    monkeypatch.setenv("QUANTLAB_REPORTS", str(tmp_path / "reports"))


# The fake IB Gateway (tests/fakegw): a real TWS-protocol server on 127.0.0.1.
from tests.fakegw.fixtures import fake_gateway, fake_gateway_factory  # noqa: E402, F401
