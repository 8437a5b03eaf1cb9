"""Shared optuna studies: several processes or machines add trials to one TPE study.

A server database (``postgresql://USER@HOST/DB``) is *shared*: each process gets its
own sampler seed derived from the study seed and a worker id (``$QUANTLAB_WORKER_ID``,
else one derived from host and pid, printed so a run can be repeated), contributes
``--trials`` new trials, and reads every process's trials for the results. Trials send
heartbeats; a trial whose process died is failed by the next process that opens the
study (optuna's ``fail_stale_trials``), so none stays RUNNING. SQLite files (the
default) and in-memory storages keep the single-process behaviour unchanged.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
import warnings
from typing import Any

import numpy as np

from quantlab.errors import ConfigError

SHARED_SCHEMES = ("postgresql", "postgres", "mysql")
HEARTBEAT_SECONDS = 5


def is_shared(storage: Any) -> bool:
    return isinstance(storage, str) and storage.split(":", 1)[0].split("+", 1)[0] in SHARED_SCHEMES


def grace_seconds() -> int:
    """How long a RUNNING trial may go without a heartbeat before others fail it."""
    return int(os.environ.get("QUANTLAB_OPTUNA_GRACE_SECONDS", "60"))


def worker_id() -> int:
    given = os.environ.get("QUANTLAB_WORKER_ID")
    if given:
        if not given.isdigit():
            raise ConfigError("QUANTLAB_WORKER_ID must be a non-negative integer", found=repr(given))
        return int(given)
    tag = f"{socket.gethostname()}:{os.getpid()}".encode()
    return int.from_bytes(hashlib.sha256(tag).digest()[:4], "big")


def sampler_seed(seed: int, worker: int) -> int:
    """A distinct, reproducible seed per (study seed, worker id)."""
    return int(np.random.SeedSequence([seed, worker]).generate_state(1)[0])


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL: show its scheme only
        return url.split("://", 1)[0] + "://..."


def _first_cause(err: BaseException) -> str:
    """The database's own message: the innermost cause's first line (optuna wraps them)."""
    while isinstance(inner := getattr(err, "orig", None) or err.__cause__, BaseException):
        err = inner
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def open_storage(url: str) -> Any:
    """An RDB storage with heartbeats for ``url``, or a clear error when it cannot be used.

    Raises:
        ConfigError: the server cannot be reached, refuses the login, or the user may not
            create or write optuna's tables.
    """
    import optuna
    import sqlalchemy.exc

    if url.startswith(("postgresql://", "postgres://")):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; quantlab ships psycopg2-binary
        url = "postgresql+psycopg2://" + url.split("://", 1)[1]
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: experimental
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=grace_seconds(),
                )
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ValueError, ImportError) as err:
            text = _first_cause(err)
            if ("duplicate key" in text or "already exists" in text) and attempt < 4:
                time.sleep(0.2 * (attempt + 1))  # processes creating optuna's tables at once: retry
                continue
            if "permission denied" in text.lower():
                raise ConfigError(
                    "the database user may not create or write optuna's tables",
                    found=f"{_safe_url(url)}: {text}",
                    fix="GRANT CREATE, USAGE ON SCHEMA public TO the user (PostgreSQL 15+ no longer grants it by "
                    "default), or use a database the user owns (createdb -O USER DB)",
                ) from None
            raise ConfigError(
                "cannot connect to the optuna storage",
                found=f"{_safe_url(url)}: {text}",
                fix="check host, port, user, password and database name (psql 'URL' must connect); "
                "the default --storage (SQLite under reports/) needs no server",
            ) from None
    raise AssertionError("unreachable")


def fail_dead_trials(study: Any) -> list[int]:
    """Fail the RUNNING trials of processes that died: stale heartbeats (optuna's
    ``fail_stale_trials``) and trials that never sent one (a process killed inside ``ask``,
    where the TPE sampler runs after the trial is created) once older than the grace period.
    Returns the trial numbers failed by the second rule.
    """
    import datetime as dt

    import optuna
    from sqlalchemy import text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    storage = getattr(study._storage, "_backend", study._storage)  # optuna wraps RDB in a cache
    cutoff = dt.datetime.now() - dt.timedelta(seconds=grace_seconds())  # optuna stores local naive times
    query = text(
        "SELECT t.trial_id, t.number FROM trials t LEFT JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
        "WHERE t.study_id = :sid AND t.state = 'RUNNING' AND h.trial_id IS NULL AND t.datetime_start < :cutoff"
    )
    with storage.engine.connect() as conn:
        rows = conn.execute(query, {"sid": study._study_id, "cutoff": cutoff}).fetchall()
    failed = []
    for trial_id, number in rows:
        try:
            if storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL):
                failed.append(int(number))
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished meanwhile
    return failed


class Heartbeats:
    """One background thread recording the heartbeat of the trial being evaluated.

    ``track(id)`` after each ``ask`` switches to the new trial (the finished one's last
    heartbeat is harmless: only RUNNING trials are checked for staleness); ``stop()``
    at the end. With ``storage`` None (files, memory) it does nothing.
    """

    def __init__(self, storage: Any) -> None:
        self._storage = storage if storage is not None and hasattr(storage, "record_heartbeat") else None
        self._trial: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, trial_id: int) -> None:
        if self._storage is None:
            return
        self._trial = trial_id
        self._storage.record_heartbeat(trial_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        storage = self._storage
        assert storage is not None, "track() starts the thread only with a heartbeat storage"
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if self._trial is not None:
                storage.record_heartbeat(self._trial)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
