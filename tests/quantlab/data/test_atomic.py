"""quantlab.data.atomic: the one atomic-write helper (run artifacts, pages, checkpoints, codegen)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quantlab.data.atomic import atomic_write, atomic_write_text


def test_writes_a_new_file_readable_by_others(tmp_path: Path) -> None:
    out = atomic_write_text(tmp_path / "page.html", "<p>hi</p>\n")
    assert out == tmp_path / "page.html"
    assert out.read_text(encoding="utf-8") == "<p>hi</p>\n"
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # not the temp file's private 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["page.html"]


def test_readers_see_the_old_file_until_the_new_one_is_complete(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    seen: list[str] = []

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        seen.append(target.read_text())
        tmp.write_text("new")

    atomic_write(target, write)
    assert seen == ["old"] and target.read_text() == "new"


def test_a_failing_writer_leaves_the_target_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    target.write_text("old")

    def write(tmp: Path) -> None:
        tmp.write_text("partial")
        raise ValueError("writer failed")

    with pytest.raises(ValueError, match="writer failed"):
        atomic_write(target, write)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_a_missing_folder_raises_oserror_for_the_caller_to_explain(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / "missing" / "x.txt", "x")


def test_mode_is_applied(tmp_path: Path) -> None:
    out = atomic_write_text(tmp_path / "token", "secret", mode=0o600)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@given(text=st.text())
def test_any_text_round_trips(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    target = tmp_path_factory.mktemp("rt") / "f.txt"
    atomic_write_text(target, text)
    assert target.read_bytes() == text.encode("utf-8")
