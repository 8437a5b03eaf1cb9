"""Run records: ids, config/data hashes, git sha, and atomic writes under ``reports/<run_id>/``.

A run id is ``<kind>-<UTC time>-<config hash[:8]>``: sortable, readable, and tied to the
configuration that produced it. Result tables are written deterministically (same data
and config give the same bytes); only ``summary.json`` carries wall-clock fields
(``created_at``, ``timings``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.data.atomic import atomic_write

# new_run_id, unwritable: re-exported (run folders are created by the engine's checkpoints too)
from quantlab.engine.runfolder import create_run_folder
from quantlab.engine.runfolder import ensure_folder as ensure_folder  # re-exported for reports
from quantlab.engine.runfolder import new_run_id as new_run_id  # re-exported for run writers
from quantlab.engine.runfolder import unwritable as unwritable  # re-exported for reports
from quantlab.paths import project_root, reports_dir
from quantlab.runs.headline import run_headline
from quantlab.runs.verdict import run_verdicts, worst


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace variation (for hashing)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()


def arrays_hash(frames: Mapping[str, pd.DataFrame]) -> str:
    """sha256 over each symbol's timestamps and OHLCV bytes, in symbol order."""
    digest = hashlib.sha256()
    for symbol in sorted(frames):
        frame = frames[symbol]
        digest.update(symbol.encode())
        digest.update(np.ascontiguousarray(frame.index.asi8).tobytes())
        for column in ("open", "high", "low", "close", "volume"):
            digest.update(np.ascontiguousarray(frame[column].to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()


def git_sha() -> str:
    """HEAD of the project checkout, with ``-dirty`` when tracked files changed; '' without git."""
    root = project_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if not sha:
            return ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def ensure_writable(reports: str | os.PathLike[str] | None = None) -> Path:
    """The reports folder, created if needed; raise ReportError early when it cannot be written."""
    return ensure_folder(reports_dir(reports))


@dataclass(frozen=True)
class RunDir:
    """The folder of one run: ``reports/<run_id>/``."""

    run_id: str
    path: Path

    @classmethod
    def create(cls, run_id: str, reports: str | os.PathLike[str] | None = None) -> RunDir:
        """A new, empty run folder; a second run with the same id gets ``<id>-2`` (never
        the first run's folder)."""
        return cls(*create_run_folder(ensure_writable(reports), run_id))

    def write_bytes(self, name: str, writer: Callable[[Path], None]) -> Path:
        """Write ``name`` atomically: ``writer`` fills a temp file that replaces the target."""
        return atomic_write(self.path / name, writer)

    def write_json(self, name: str, data: Any, indent: int | None = 2) -> Path:
        text = json.dumps(data, indent=indent, sort_keys=True, default=_json_default, allow_nan=False) + "\n"

        def write(path: Path) -> None:
            path.write_text(text)

        return self.write_bytes(name, write)

    def write_csv(self, name: str, frame: pd.DataFrame, index: bool = True) -> Path:
        return self.write_bytes(name, lambda p: frame.to_csv(p, index=index, float_format="%.12g", lineterminator="\n"))

    def write_parquet(self, name: str, frame: pd.DataFrame) -> Path:
        return self.write_bytes(name, lambda p: frame.to_parquet(p, index=False, compression="zstd"))


def finite_or_none(value: Any) -> Any:
    """JSON-safe float: NaN and infinities become None."""
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def clean_for_json(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): clean_for_json(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [clean_for_json(v) for v in data]
    if isinstance(data, np.ndarray):
        return [clean_for_json(v) for v in data.tolist()]
    if isinstance(data, np.integer):
        return int(data)
    return finite_or_none(data)


def versions() -> dict[str, str]:
    import numba
    import numpy
    import vectorbt

    import quantlab

    return {
        "quantlab": quantlab.__version__,
        "numpy": numpy.__version__,
        "pandas": pd.__version__,
        "numba": numba.__version__,
        "vectorbt": vectorbt.__version__,
    }


def labelled(summary: dict[str, Any]) -> dict[str, Any]:
    """``headline`` (the run's headline window, its basis and every window it reports on)
    and ``verdict`` (per symbol and ``overall``; optimize and walk-forward only)."""
    out: dict[str, Any] = {"headline": run_headline(summary)}
    verdicts = run_verdicts(summary)
    if verdicts:
        out["verdict"] = {
            "overall": worst(verdicts.values()).to_dict(),
            "symbols": {s: v.to_dict() for s, v in verdicts.items()},
        }
    return out


def finish_run(run: RunDir, result: Any, save_started: float, began: float) -> None:
    """Stamp the summary (run id, time, git sha, versions, timings), write it last, and
    point ``result`` at the run folder."""
    result.summary.setdefault("timings", {})
    result.summary["timings"]["save"] = time.perf_counter() - save_started
    result.summary["timings"]["total"] = time.perf_counter() - began
    inputs = getattr(result, "inputs", None)
    if "period" not in result.summary and inputs is not None:  # walk-forward: the bars' first and last day
        result.summary["period"] = {
            s: {
                "first": str(inputs.frames[s].index[0]),
                "last": str(inputs.frames[s].index[-1]),
                "bars": len(inputs.frames[s]),
            }
            for s in inputs.symbols
        }
    result.summary.update(labelled(result.summary))
    result.summary.update(
        {
            "run_id": run.run_id,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_sha": git_sha(),
            "versions": versions(),
        }
    )
    run.write_json("summary.json", clean_for_json(result.summary))
    result.run_id = run.run_id
    result.path = run.path
