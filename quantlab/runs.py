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
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quantlab.data.atomic import atomic_write
from quantlab.errors import ReportError
from quantlab.paths import project_root, reports_dir


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
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return ""


def new_run_id(kind: str, cfg_hash: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{kind}-{now.strftime('%Y%m%d-%H%M%S')}-{cfg_hash[:8]}"


def unwritable(folder: Path, err: OSError) -> ReportError:
    """The one error for a reports folder (or a folder inside it) that cannot be written."""
    return ReportError(
        "cannot write to the reports folder",
        found=f"{folder} ({err.strerror or err})",
        fix="make it writable, or choose another folder with --reports or QUANTLAB_REPORTS",
    )


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` if needed and check that a file can be written in it.

    Raises:
        ReportError: the folder cannot be created or written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise unwritable(folder, err) from None
    return folder


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
        base = ensure_writable(reports)
        for n in range(1, 10_000):
            candidate = run_id if n == 1 else f"{run_id}-{n}"
            try:
                (base / candidate).mkdir()
            except FileExistsError:
                continue
            except OSError as err:
                raise unwritable(base, err) from None
            return cls(candidate, base / candidate)
        raise ReportError("too many runs with the same id", found=run_id, fix="wait a second and run again")

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


def build_pages(path: Path, report: bool | str, store: Any = None) -> Any:
    """Write the run's report pages (see :mod:`quantlab.reports`) unless ``report`` is off.

    ``report``: True or ``"full"`` (plotly page and QuantStats tearsheet), ``"charts"``
    (plotly page only), False or ``"none"``. Returns the ``ReportOutcome`` or None. A
    QuantStats failure is recorded in the outcome, never raised.
    """
    if report in (False, "none"):
        return None
    if report not in (True, "full", "charts"):
        raise ReportError("unknown report setting", found=repr(report), fix="use full, charts or none")
    from quantlab.reports import build

    return build(path, store=store, tearsheet=report != "charts")
