"""Shared fixtures: paths to the real data in ../shared, temporary stores, seeded RNG."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_root() -> Path:
    env = os.environ.get("QUANTLAB_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


SHARED_DATA = _shared_root() / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real market data beside the repository (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real test data not found at {SHARED_DATA}; set QUANTLAB_SHARED to the shared folder")
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
