"""A fresh clone runs the suite with nothing beside it: real data comes from tests/fixtures."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from tests import fixtures

REPO = Path(__file__).resolve().parent.parent


def test_every_vendored_file_is_in_the_manifest_and_unpacks_intact(real_data: Path) -> None:
    vendored = {p.relative_to(fixtures.DATA).as_posix().removesuffix(".gz") for p in fixtures.DATA.rglob("*.gz")}
    assert vendored == set(fixtures.MANIFEST)
    for relative, digest in fixtures.MANIFEST.items():
        assert hashlib.sha256((real_data / relative).read_bytes()).hexdigest() == digest
    size = sum(p.stat().st_size for p in fixtures.DATA.rglob("*.gz"))
    assert size < 2_000_000, f"vendored data grew to {size:,} bytes: keep the repository small"


def test_only_the_root_conftest_knows_about_the_shared_folder() -> None:
    """Tests take real data from the ``real_data`` fixture; ``shared_extra`` is optional."""
    pattern = re.compile(r"\.\./shared|QUANTLAB_SHARED|SHARED_DATA|/work/shared")
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "tests").rglob("test_*.py")
        if p.name != "test_fresh_clone.py" and pattern.search(p.read_text())
    ]
    offenders += [
        str(p.relative_to(REPO))
        for p in (REPO / "tests").rglob("conftest.py")
        if p.parent != REPO / "tests" and pattern.search(p.read_text())
    ]
    assert offenders == []


def test_real_data_tests_pass_without_a_shared_folder(tmp_path: Path) -> None:
    """Regression (issue 11 item 6): ``shared_data`` used to fail when ../shared was missing."""
    env = {**os.environ, "QUANTLAB_SHARED": str(tmp_path / "nowhere")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "tests/quantlab/data/test_import_guards.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "error" not in proc.stdout.lower()


def test_vendored_copies_equal_the_shared_originals(shared_extra: Path) -> None:
    """Optional: only when ../shared/data is present."""
    for relative in fixtures.MANIFEST:
        original = shared_extra / relative
        if original.is_file():
            vendored = fixtures.DATA / f"{relative}.gz"
            assert gzip.decompress(vendored.read_bytes()) == original.read_bytes(), relative
