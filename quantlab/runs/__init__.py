"""Runs: the record of one backtest, optimisation or walk-forward under ``reports/<run_id>/``.

``record`` (ids, hashes, atomic writes, the summary stamp), ``artifacts`` (reading a saved
run), ``load`` (:func:`quantlab.load_run`), ``headline`` and ``verdict`` (how a run's
numbers are labelled) and ``chart`` (the price-chart data saved with a run). Reports read
runs; nothing here imports :mod:`quantlab.reports`.
"""

from __future__ import annotations

from quantlab.runs.record import (
    RunDir,
    arrays_hash,
    canonical_json,
    clean_for_json,
    config_hash,
    ensure_folder,
    ensure_writable,
    finish_run,
    finite_or_none,
    git_sha,
    labelled,
    new_run_id,
    unwritable,
    versions,
)

__all__ = [
    "RunDir",
    "arrays_hash",
    "canonical_json",
    "clean_for_json",
    "config_hash",
    "ensure_folder",
    "ensure_writable",
    "finish_run",
    "finite_or_none",
    "git_sha",
    "labelled",
    "new_run_id",
    "unwritable",
    "versions",
]
