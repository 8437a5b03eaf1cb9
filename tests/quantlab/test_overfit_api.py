"""The public API of quantlab.overfit is exported and documented."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import quantlab.overfit as overfit

DOC = Path(__file__).resolve().parents[2] / "docs" / "overfitting.md"


def test_every_public_name_is_exported_and_documented() -> None:
    text = DOC.read_text()
    for name in overfit.__all__:
        assert hasattr(overfit, name), name
        assert f"`{name}" in text, f"{name} missing from docs/overfitting.md"


def test_every_result_field_is_documented() -> None:
    text = DOC.read_text()
    for cls in (overfit.DeflatedSharpe, overfit.PBOResult, overfit.RealityCheckResult):
        for f in dataclasses.fields(cls):
            assert f.name in text, f"{cls.__name__}.{f.name} missing from docs/overfitting.md"
