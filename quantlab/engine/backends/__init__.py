"""Where sweep chunks run: in this process (the default) or on a Dask cluster.

The optimizer and walk-forward call :func:`active_backend` where they sweep; with none
active they take today's in-process path unchanged. ``with use_backend(make_backend(
"local:2")):`` (the CLI's ``--cluster``, ``--resume``) routes their sweeps through a
chunked, checkpointed backend. See docs/scaling.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from quantlab.engine.backends.base import Backend, ChunkedBackend, InProcessChunked, SweepError
from quantlab.engine.backends.checkpoint import CheckpointRun
from quantlab.errors import ConfigError

__all__ = [
    "Backend",
    "ChunkedBackend",
    "InProcessChunked",
    "SweepError",
    "active_backend",
    "begin_run",
    "checkpoint_run",
    "make_backend",
    "use_backend",
]

_ACTIVE: ContextVar[Backend | None] = ContextVar("quantlab_backend", default=None)


def make_backend(
    cluster: str | None = None, resume: str | None = None, chunk_size: int | None = None
) -> Backend | None:
    """``cluster``: None (``$QUANTLAB_CLUSTER`` or in-process), ``local:N`` or ``tcp://HOST:PORT``.

    Returns None for today's in-process path (no cluster, nothing to resume).
    """
    cluster = cluster or os.environ.get("QUANTLAB_CLUSTER") or None
    if chunk_size is None and os.environ.get("QUANTLAB_CHUNK_SIZE"):
        chunk_size = int(os.environ["QUANTLAB_CHUNK_SIZE"])
    if cluster is None:
        return InProcessChunked(chunk_size, resume) if resume else None
    if cluster.startswith("local:"):
        n = cluster.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError(
                "--cluster local:N needs a worker count of at least 1",
                found=repr(cluster),
                fix="e.g. --cluster local:2",
            )
    elif not cluster.startswith(("tcp://", "tls://")):
        raise ConfigError(
            "unknown --cluster",
            found=repr(cluster),
            fix="use local:N (worker processes here) or tcp://HOST:8786 (a running `dask scheduler`)",
        )
    from quantlab.engine.backends.dask_cluster import DaskBackend

    return DaskBackend(cluster, chunk_size, resume)


@contextmanager
def use_backend(backend: Backend | None) -> Iterator[Backend | None]:
    """Route sweeps in this block through ``backend``; close it (cluster, checkpoints) after."""
    token = _ACTIVE.set(backend)
    try:
        yield backend
    finally:
        _ACTIVE.reset(token)
        if backend is not None:
            backend.close()


def active_backend() -> Backend | None:
    return _ACTIVE.get()


def begin_run(kind: str, cfg_hash: str, data_hash: str, reports: Any) -> CheckpointRun | None:
    """Open (or resume) the checkpointed run folder when a chunked backend is active."""
    backend = active_backend()
    return backend.begin_run(kind, cfg_hash, data_hash, reports) if backend is not None else None


def checkpoint_run(kind: str) -> CheckpointRun | None:
    """The checkpointed run folder of the active backend for a ``kind`` run, if there is one
    (the run is then saved into it, see :func:`quantlab.optimizer.outputs.run_dir`)."""
    run = getattr(active_backend(), "run", None)
    return run if isinstance(run, CheckpointRun) and run.kind == kind else None
