"""Finished chunks on disk, in the run folder, so a killed run resumes where it stopped.

Layout: ``reports/<run_id>/checkpoint.json`` (kind, config and data hashes) and
``reports/<run_id>/chunks/<key>.npz`` (one file per finished chunk, written atomically).
A run folder with ``checkpoint.json`` but no ``summary.json`` is unfinished: the next run
with the same kind, config hash and data hash resumes it automatically, or ``--resume
RUN_ID`` names it. ``chunks/`` is removed once ``summary.json`` is written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantlab.data.atomic import atomic_write
from quantlab.engine.backends.chunks import ChunkResult
from quantlab.engine.runfolder import create_run_folder, ensure_folder, new_run_id
from quantlab.errors import ConfigError

MANIFEST = "checkpoint.json"


class ChunkStore:
    """``<folder>/<key>.npz`` per finished chunk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def has(self, key: str) -> bool:
        return self._path(key).exists()

    def count(self) -> int:
        return sum(1 for p in self.folder.glob("*.npz") if not p.name.startswith("."))  # not temp files

    def load(self, key: str) -> ChunkResult:
        with np.load(self._path(key)) as z:
            return ChunkResult(z["metrics"], z["block_sum"], z["block_sumsq"], float(z["seconds"]))

    def save(self, key: str, result: ChunkResult) -> None:
        def write(tmp: Path) -> None:
            with tmp.open("wb") as fh:  # a file object: np.savez would add ".npz" to a path
                np.savez(
                    fh,
                    metrics=result.metrics,
                    block_sum=result.block_sum,
                    block_sumsq=result.block_sumsq,
                    seconds=np.float64(result.seconds),
                )

        atomic_write(self._path(key), write)


@dataclass
class CheckpointRun:
    """The run folder a chunked sweep checkpoints into."""

    kind: str
    run_id: str
    path: Path
    resumed: bool
    chunks_at_start: int

    @property
    def store(self) -> ChunkStore:
        return ChunkStore(self.path / "chunks")

    def finish(self, report: dict[str, object]) -> None:
        """After ``summary.json``: record what the backend did and drop the chunk files."""
        if not (self.path / "summary.json").exists():
            return
        (self.path / "backend.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(self.path / "chunks", ignore_errors=True)
        (self.path / MANIFEST).unlink(missing_ok=True)


def _manifest(path: Path) -> dict[str, str] | None:
    try:
        manifest: dict[str, str] = json.loads((path / MANIFEST).read_text())
        return manifest
    except (OSError, ValueError):
        return None


def open_run(kind: str, cfg_hash: str, data_hash: str, reports: Path, resume: str | None) -> CheckpointRun:
    """The unfinished run to resume (named, or found by config and data hash) or a new one,
    in the reports folder ``reports`` (already resolved by the caller: :func:`quantlab.runs.ensure_writable`).

    Raises:
        ConfigError: ``resume`` names no unfinished run, a finished one, or one started on
            other data or another configuration.
    """
    base = ensure_folder(Path(reports))
    wanted = {"kind": kind, "config_hash": cfg_hash, "data_hash": data_hash}
    if resume:
        path = base / resume
        if (path / "summary.json").exists():
            raise ConfigError(
                "that run is complete; there is nothing to resume",
                found=resume,
                fix="run again without --resume to start a new run",
            )
        found = _manifest(path)
        if found is None:
            raise ConfigError(
                "no unfinished run with that id",
                found=f"{resume} (looked in {base})",
                fix="give the RUN_ID printed when the interrupted run started (a folder under reports/ with checkpoint.json)",
            )
        changed = [k for k in ("kind", "config_hash", "data_hash") if found.get(k) != wanted[k]]
        if changed:
            what = {"kind": "command", "config_hash": "configuration", "data_hash": "data"}
            raise ConfigError(
                f"run {resume} was started with other {' and '.join(what[k] for k in changed)}; resuming would mix results",
                found="; ".join(f"{k} {str(found.get(k))[:12]} vs now {wanted[k][:12]}" for k in changed),
                fix="rerun the original command unchanged to resume, or drop --resume to start a new run",
            )
        store = ChunkStore(path / "chunks")
        return CheckpointRun(kind, resume, path, True, store.count())
    candidates = sorted(
        (
            p
            for p in base.glob(f"{kind}-*-{cfg_hash[:8]}*")
            if not (p / "summary.json").exists() and _manifest(p) == wanted
        ),
        key=lambda p: p.name,
    )
    if candidates:
        path = candidates[-1]
        return CheckpointRun(kind, path.name, path, True, ChunkStore(path / "chunks").count())
    run_id, path = create_run_folder(base, new_run_id(kind, cfg_hash))
    (path / MANIFEST).write_text(json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return CheckpointRun(kind, run_id, path, False, 0)
