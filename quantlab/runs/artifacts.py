"""Read one run folder: resolve the run id, check the artifacts a report needs, load tables.

A run folder is ``reports/<run_id>/`` as written by backtest, optimize and walkforward.
Every reader returns plain pandas objects; nothing here draws or writes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quantlab.errors import ReportError, suggest
from quantlab.paths import reports_dir

#: Files without which no page can be drawn, per run kind.
REQUIRED: dict[str, tuple[str, ...]] = {
    "backtest": ("summary.json", "equity.csv"),
    "optimize": ("summary.json", "equity.csv", "results.parquet"),
    "walkforward": ("summary.json", "equity.csv", "folds.csv"),
}
RUN_KINDS = tuple(REQUIRED)
_NOT_PARAMS = frozenset(
    {"fold", "symbol", "train_start", "train_end", "test_start", "test_end", "partial", "candidates", "oos_trades"}
)
_RERUN = {
    "backtest": "quantlab backtest",
    "optimize": "quantlab optimize",
    "walkforward": "quantlab walkforward",
}


def run_folders(reports: str | os.PathLike[str] | None = None) -> list[Path]:
    """Sub-folders of the reports folder that hold a ``summary.json``, sorted by name."""
    base = reports_dir(reports)
    if not base.is_dir():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and (p / "summary.json").is_file())


def resolve_run(run: str | os.PathLike[str], reports: str | os.PathLike[str] | None = None) -> Path:
    """Folder of ``run``: a path to a run folder, or a run id under the reports folder.

    Raises:
        ReportError: no such folder; the message suggests close run ids.
    """
    candidate = Path(run).expanduser()
    if candidate.is_dir() and (candidate.is_absolute() or os.sep in str(run) or str(run).startswith(".")):
        return candidate.resolve()
    base = reports_dir(reports)
    folder = base / str(run)
    if folder.is_dir():
        return folder
    known = [p.name for p in run_folders(reports)]
    raise ReportError(
        f"unknown run id {str(run)!r}",
        found=f"{len(known)} runs in {base}",
        fix=suggest(
            str(run), known, then="`quantlab runs` lists them (use --reports DIR for another folder)", cutoff=0.5
        ),
    )


@dataclass
class Run:
    """A run folder and its ``summary.json``; tables load lazily and are cached."""

    path: Path
    summary: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.path.name)

    @property
    def kind(self) -> str:
        return str(self.summary.get("kind", ""))

    @property
    def strategy(self) -> str:
        return str(self.summary.get("strategy", "?"))

    @property
    def symbols(self) -> list[str]:
        return [str(s) for s in self.summary.get("symbols", [])]

    @property
    def interval(self) -> str:
        return str(self.summary.get("interval") or self.summary.get("config", {}).get("interval") or "1d")

    @property
    def metric(self) -> str:
        return str(self.summary.get("metric") or self.summary.get("config", {}).get("metric") or "sharpe")

    @property
    def init_cash(self) -> float | None:
        """Cash before the first bar (None when the summary does not say)."""
        sim = self.summary.get("config", {}).get("sim") or self.summary.get("sim") or {}
        value = sim.get("init_cash")
        return float(value) if value else None

    @property
    def params(self) -> dict[str, float]:
        """The parameters the run settled on (backtest: given; optimize: the winner)."""
        if self.kind == "optimize":
            return dict(self.summary.get("best", {}).get("params", {}))
        return dict(self.summary.get("params", {}))

    @property
    def param_names(self) -> list[str]:
        """Strategy parameter names, from the summary or the tables that carry them."""
        names = list(self.params)
        if names or self.kind != "walkforward":
            return names
        if self.has("drift.csv"):
            drift = self.drift()
            if drift is not None:
                return [c for c in drift.columns if c not in _NOT_PARAMS]
        cols = self.folds().columns
        return [c for c in cols if c not in _NOT_PARAMS and not c.startswith(("is_", "oos_"))]

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def _load(self, name: str, reader: Any) -> Any:
        if name not in self._cache:
            try:
                self._cache[name] = reader(self.path / name)
            except Exception as err:  # any parser error: say which file and how to recover
                raise ReportError(
                    f"cannot read {name} of run {self.run_id}",
                    found=f"{type(err).__name__}: {err}",
                    fix=f"rerun `{_RERUN.get(self.kind, 'the run')}` to write it again",
                ) from None
        return self._cache[name]

    def equity(self) -> pd.DataFrame:
        """Portfolio value per symbol (columns) on a UTC index."""
        return self._load("equity.csv", _read_time_csv)

    def trades(self) -> pd.DataFrame | None:
        return self._load("trades.csv", pd.read_csv) if self.has("trades.csv") else None

    def chart(self) -> pd.DataFrame | None:
        """Bars and indicator lines for the price chart (``chart.csv``), None when absent."""
        return self._load("chart.csv", _read_chart) if self.has("chart.csv") else None

    def results(self) -> pd.DataFrame:
        return self._load("results.parquet", pd.read_parquet)

    def result_rows(self) -> int:
        """Rows of ``results.parquet`` from its footer (nothing else is read)."""
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.path / "results.parquet").metadata.num_rows)

    def top(self) -> pd.DataFrame | None:
        return self._load("top.csv", pd.read_csv) if self.has("top.csv") else None

    def holdout(self) -> pd.DataFrame | None:
        return self._load("holdout.csv", pd.read_csv) if self.has("holdout.csv") else None

    def folds(self) -> pd.DataFrame:
        return self._load("folds.csv", _read_folds)

    def drift(self) -> pd.DataFrame | None:
        return self._load("drift.csv", _read_folds) if self.has("drift.csv") else None

    def overfit(self) -> dict[str, Any] | None:
        return self._load("overfit.json", _read_json) if self.has("overfit.json") else None


def open_run(run: str | os.PathLike[str], reports: str | os.PathLike[str] | None = None) -> Run:
    """Resolve ``run`` and check that its kind's required artifacts are present.

    Raises:
        ReportError: unknown run id, unreadable ``summary.json``, unknown kind, or a
            missing required file (named, with the command that writes it).
    """
    path = resolve_run(run, reports)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise ReportError(
            f"run folder {path.name} has no summary.json",
            found=f"{sorted(p.name for p in path.iterdir())[:8]} in {path}",
            fix="the run did not finish saving; rerun it (quantlab backtest/optimize/walkforward)",
        )
    try:
        summary = _read_json(summary_path)
    except (OSError, ValueError) as err:
        raise ReportError(
            f"cannot read summary.json of run {path.name}", found=str(err), fix="rerun the run to write it again"
        ) from None
    kind = str(summary.get("kind", ""))
    if kind not in REQUIRED:
        raise ReportError(
            f"run {path.name} is of an unknown kind",
            found=repr(kind),
            fix=f"reports are built for {', '.join(RUN_KINDS)} runs",
        )
    missing = [name for name in REQUIRED[kind] if not (path / name).is_file()]
    if missing:
        raise ReportError(
            f"run {path.name} lacks {', '.join(missing)}, which the {kind} report needs",
            found=f"{path}",
            fix=f"rerun `{_RERUN[kind]}` with the same settings to write a complete run folder",
        )
    return Run(path, summary)


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _read_time_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=0)
    frame.index = pd.to_datetime(frame.index, utc=True)
    frame.index.name = "time"
    if frame.empty or frame.shape[1] == 0:
        raise ValueError("no rows or no value columns")
    return frame.astype("float64")


def _read_chart(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=0)
    frame.index = pd.to_datetime(frame.index, utc=True)
    return frame


def _read_folds(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    for col in ("train_start", "train_end", "test_start", "test_end"):
        if col in frame.columns:
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame
