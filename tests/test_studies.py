"""The notebooks in studies/ run headless from top to bottom, so they never rot.

Each runs in a fresh kernel of this interpreter (a kernel spec written to a temporary
JUPYTER_PATH, so a system-wide ``python3`` kernel cannot hijack it), with the working
directory ``studies/`` and the test's own reports folder ($QUANTLAB_REPORTS).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

STUDIES = Path(__file__).resolve().parent.parent / "studies"
NOTEBOOKS = ["01_quickstart.ipynb", "02_optimization.ipynb", "03_walkforward.ipynb"]
KERNEL = "quantlab-studies"
CELL_TIMEOUT = 300


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec that starts ipykernel with this very interpreter."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "quantlab (tests)",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return KERNEL


def test_studies_are_committed_without_outputs() -> None:
    for name in NOTEBOOKS:
        book = nbformat.read(STUDIES / name, as_version=4)
        nbformat.validate(book)
        for cell in book.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{name}: clear the outputs before committing"
                )


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_study_runs_headless(name: str, kernel: str, tmp_path: Path) -> None:
    book = nbformat.read(STUDIES / name, as_version=4)
    client = NotebookClient(
        book,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel,
        allow_errors=False,
        resources={"metadata": {"path": str(STUDIES)}},
    )
    client.execute()
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert list((tmp_path / "reports").glob("*/summary.json")), "the study wrote no run into $QUANTLAB_REPORTS"
