"""No tracked file carries a committed merge-conflict marker.

A marker line is one that starts with seven ``<`` or seven ``>`` and a space (what git
writes around a conflict). The ``=======`` separator alone is not checked: Markdown uses
it for headings. Files are the ones git tracks (``git ls-files``), so generated and
ignored files never count; binary files (a NUL byte in their first 8 KiB, git's own
heuristic) are skipped.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# built, not written out: this file would otherwise hold the markers it looks for
MARKERS = (b"<" * 7 + b" ", b">" * 7 + b" ")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def tracked_files(root: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    return [root / name for name in out.decode().split("\0") if name]


def conflict_markers(root: Path) -> list[str]:
    """``path:line`` of every conflict-marker line in the files git tracks under ``root``."""
    found: list[str] = []
    for path in tracked_files(root):
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):  # deleted in the work tree, or a submodule
            continue
        if b"\0" in data[:8192]:
            continue
        for number, line in enumerate(data.splitlines(), 1):
            if line.startswith(MARKERS):
                found.append(f"{path.relative_to(root)}:{number}")
    return found


def test_no_tracked_file_has_conflict_markers() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    assert conflict_markers(REPO) == [], "resolve these merge conflicts"


def _repo_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for name, text in files.items():
        (tmp_path / name).write_bytes(text)
    git("add", *files)
    return tmp_path


def test_the_check_finds_a_synthetic_conflict(tmp_path: Path) -> None:
    conflict = b"a = 1\n" + MARKERS[0] + b"HEAD\nb = 2\n=======\nb = 3\n" + MARKERS[1] + b"branch\n"
    root = _repo_with(
        tmp_path,
        {
            "clean.md": b"Title\n=======\n\ntext\n",  # a Markdown heading is not a conflict
            "broken.py": conflict,
            "blob.bin": b"\0" + conflict,  # binary: skipped
        },
    )
    (root / "untracked.py").write_bytes(conflict)  # not tracked: not checked
    assert conflict_markers(root) == ["broken.py:2", "broken.py:6"]
