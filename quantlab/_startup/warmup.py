"""Compile vectorbt's numba functions in a child process while this one compiles ours.

On an empty numba cache, the first run compiles quantlab's kernels (the sweep, the
simulator, CSCV: ~10 s) and then vectorbt's (the replay, equity and trade records:
~19 s), one after the other: numba compiles one function at a time per process. Both
land in the same on-disk cache, so a child process can compile vectorbt's share on the
second core meanwhile; the parent waits for it just before its first vectorbt call and
then loads those functions from the cache instead of compiling them.

The child replays a few synthetic orders through the very functions a run uses
(:mod:`quantlab.replay`), so it compiles the same type signatures. It is started only
while a stamp in the cache says vectorbt has not been warmed there, and it is advisory:
if it fails, or the parent stops waiting, the parent simply compiles what it needs.
``QUANTLAB_NO_WARMUP=1`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

#: Longest the parent waits for the child: well above its ~20 s on a 2-core machine.
WAIT_SECONDS = 120.0


#: Replay paths the child can compile, each a different set of vectorbt signatures:
#: one column (backtest, the saved winner), several columns (optimize's top-N replay),
#: a cash-sharing group (``backtest --shared-cash``).
PATHS = ("columns", "single", "shared")


def _stamp_path(path: str) -> Path | None:
    """The stamp of one replay path in numba's cache folder, keyed by the vectorbt and numba installs."""
    cache = os.environ.get("NUMBA_CACHE_DIR")
    if not cache:
        return None
    key = hashlib.sha256()
    for dist in ("vectorbt", "numba", "numpy"):
        try:
            key.update(f"{dist}={metadata.version(dist)};".encode())
        except metadata.PackageNotFoundError:
            return None
    try:
        origin = Path(str(metadata.distribution("vectorbt").locate_file("vectorbt/portfolio/nb.py")))
        key.update(f"{origin}:{origin.stat().st_mtime_ns}".encode())  # numba keys its cache the same way
    except (OSError, TypeError):
        return None
    key.update(sys.version.encode())
    return Path(cache) / f"quantlab-vectorbt-warm-{path}-{key.hexdigest()[:16]}"


def _uncompiled(paths: tuple[str, ...]) -> list[str]:
    """The replay paths among ``paths`` whose stamp is missing from this cache."""
    out = []
    for path in paths:
        stamp = _stamp_path(path)
        if stamp is not None and not stamp.exists():
            out.append(path)
    return out


class VectorbtWarmup:
    """A child process compiling vectorbt's functions; :meth:`wait` before using them.

    Args:
        paths: the replay paths (:data:`PATHS`) the caller is about to use, in the order
            it needs them; those already compiled in this cache are skipped.
    """

    def __init__(self, *paths: str) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if os.environ.get("QUANTLAB_NO_WARMUP") == "1":
            return
        todo = _uncompiled(paths)
        if not todo:
            return
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "quantlab._startup.warmup", *todo],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._proc = None

    @property
    def started(self) -> bool:
        return self._proc is not None

    def wait(self, *compile_here: str) -> None:
        """Wait for the child (at most :data:`WAIT_SECONDS`); never raises.

        Args:
            compile_here: replay paths this process will need later: compiled here first,
                while the child is still busy (unless already in the cache).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for path in _uncompiled(compile_here):
            try:
                _compile(path)
            except Exception:  # noqa: BLE001 - advisory: the real call compiles (or fails) on its own
                pass
        try:
            proc.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def exercise(path: str) -> None:
    """Replay synthetic orders through the vectorbt functions of one replay path."""
    import numpy as np
    import pandas as pd

    from quantlab.engine.intervals import get_interval
    from quantlab.engine.settings import make_sim_config
    from quantlab.engine.signals import PriceArrays
    from quantlab.replay import (
        SimRecord,
        equity_frame,
        portfolio,
        portfolio_from_orders,
        records_frame,
        vbt_metrics,
    )

    n = 40
    index = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC")
    close = 100.0 + np.cumsum(np.sin(np.arange(n)))
    open_ = np.roll(close, 1)
    open_[0] = close[0]
    prices = PriceArrays("WARM", index, open_, close + 1.0, open_ - 1.0, close, np.full(n, 1e6))
    size = np.full(n, np.nan)
    size[[2, 9, 15, 22, 30]] = [10.0, -20.0, 15.0, -5.0, 7.0]
    fee = np.where(np.isnan(size), 0.0, 1.0)
    record = SimRecord(index, size, fee, np.zeros(n), {})
    sim = make_sim_config()
    interval = get_interval("1d")
    if path == "columns":
        flat = SimRecord(index, np.full(n, np.nan), np.zeros(n), np.zeros(n), {})
        vbt_metrics(portfolio([record, flat], prices, sim, interval, 0, ["a", "b"]), interval)
        return
    if path == "single":
        pf = portfolio(record, prices, sim, interval)
    elif path == "shared":
        pf = portfolio_from_orders(
            pd.DataFrame(np.column_stack([close, close * 1.1]), index=index, columns=["A", "B"]),
            np.column_stack([size, size[::-1]]),
            np.column_stack([open_, open_ * 1.1]),
            np.column_stack([fee, fee[::-1]]),
            sim,
            interval,
            cash_sharing=True,
            call_seq=np.tile(np.arange(2, dtype=np.int64), (n, 1)),
        )
        pf.value()  # before the metrics, as the shared-cash backtest does (vectorbt caches it read-only)
    else:
        raise ValueError(f"unknown warm-up path {path!r}; expected one of {PATHS}")
    vbt_metrics(pf, interval)
    equity_frame({"x": pf})
    records_frame({"x": pf}, "positions")
    records_frame({"x": pf}, "orders")


def _compile(path: str) -> None:
    """Run one replay path and stamp it as compiled in this cache."""
    began = time.perf_counter()
    exercise(path)
    stamp = _stamp_path(path)
    if stamp is not None:
        try:
            stamp.write_text(f"vectorbt's {path} replay compiled in {time.perf_counter() - began:.1f} s\n")
        except OSError:
            pass


def main(paths: list[str]) -> int:
    sys.modules["quantstats"] = None  # type: ignore[assignment]  # vectorbt's optional pf.qs adapter: not needed here
    for path in paths:
        _compile(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(PATHS)))
