"""A writer killed with SIGKILL mid-append leaves the stored data readable and intact.

Real subprocesses, real ``os.kill(pid, SIGKILL)``:

* *mid-append*: the child copies the store, has written half of the new rows into
  its private copy (the HDF5 file is open for writing, B-tree half updated) and is
  killed there;
* *in a loop*: the child appends session after session as fast as it can and is
  killed at an arbitrary moment; whatever it committed is complete, nothing else.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest

from quantlab.data import load, write_bars
from quantlab.data._txn import lock_path, write_transaction
from quantlab.errors import StoreError

from .conftest import REPO, assert_bitwise_equal, file_digest, make_bars

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from conftest import make_bars
    from quantlab.data import _h5, write_bars

    store, marker, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    bars = make_bars(390 * 40, freq="1min", seed=3)
    if mode == "hang-mid-append":
        real_write_from = _h5.write_from

        def half_then_hang(group, position, times, columns):
            half = len(times) // 2
            real_write_from(group, position, times[:half], {{k: v[:half] for k, v in columns.items()}})
            group.file.flush()
            marker.write_text("half of the rows are in the private copy")
            time.sleep(120)

        _h5.write_from = half_then_hang
        write_bars(bars.iloc[390:], "SPY", "1m", store=store, mode="append")
    else:
        for day in range(1, 40):
            write_bars(bars.iloc[390 * day : 390 * (day + 1)], "SPY", "1m", store=store, mode="append")
            with marker.open("a") as fh:
                fh.write(f"{{day}}\\n")
    """
)


def _spawn(tmp_path: Path, store: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path]:
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=str(Path(__file__).resolve().parent)))
    marker = tmp_path / "marker.txt"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store), str(marker), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    return proc, marker


def _wait_for(marker: Path, proc: subprocess.Popen[bytes], lines: int = 1, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists() and len(marker.read_text().splitlines()) >= lines:
            return
        if proc.poll() is not None:
            raise AssertionError(f"child exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("child never reached the append")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def test_sigkill_mid_append_leaves_store_intact_and_readers_unblocked(tmp_path: Path) -> None:
    store = tmp_path / "market.h5"
    bars = make_bars(390 * 40, freq="1min", seed=3)
    write_bars(bars.iloc[:390], "SPY", "1m", store=store)
    digest = file_digest(store)
    proc, marker = _spawn(tmp_path, store, "hang-mid-append")
    try:
        _wait_for(marker, proc)
        # the writer is inside the append: readers still read the committed data
        assert_bitwise_equal(load("SPY", interval="1m", store=store), bars.iloc[:390])
        temps = list(tmp_path.glob(".market.h5.tmp-*"))
        assert len(temps) == 1 and temps[0].stat().st_size > 0
        # a second writer waits for the lock instead of interleaving
        with (
            pytest.raises(StoreError, match="Another quantlab process is writing"),
            write_transaction(store, lock_timeout=0.2),
        ):
            pass
    finally:
        _kill(proc)
    assert file_digest(store) == digest
    with h5py.File(store, "r") as f:  # opens cleanly
        assert f["SPY/1m/time"].shape == (390,)
    assert_bitwise_equal(load("SPY", interval="1m", store=store), bars.iloc[:390])
    # the kernel released the dead writer's lock; the next writer cleans up its temp file
    result = write_bars(bars.iloc[390:780], "SPY", "1m", store=store, mode="append")
    assert result.rows_after == 780
    assert not list(tmp_path.glob(".market.h5.tmp-*"))
    assert lock_path(store).exists()
    assert_bitwise_equal(load("SPY", interval="1m", store=store), bars.iloc[:780])


def test_sigkill_during_a_loop_of_appends_keeps_every_committed_append(tmp_path: Path) -> None:
    store = tmp_path / "market.h5"
    bars = make_bars(390 * 40, freq="1min", seed=3)
    write_bars(bars.iloc[:390], "SPY", "1m", store=store)
    proc, marker = _spawn(tmp_path, store, "loop")
    try:
        _wait_for(marker, proc, lines=3)
        time.sleep(0.013)  # land somewhere inside a later transaction
    finally:
        _kill(proc)
    reported = len(marker.read_text().splitlines())
    stored = load("SPY", interval="1m", store=store)
    sessions = len(stored) // 390
    assert len(stored) % 390 == 0, "a partial append became visible"
    assert sessions - 1 in (
        reported,
        reported + 1,
    )  # killed before or after printing the last commit
    assert_bitwise_equal(stored, bars.iloc[: 390 * sessions])
    write_bars(bars.iloc[390 * sessions : 390 * (sessions + 1)], "SPY", "1m", store=store, mode="append")
    assert len(load("SPY", interval="1m", store=store)) == 390 * (sessions + 1)


def test_failed_write_inside_the_process_leaves_no_trace(store: Path) -> None:
    bars = make_bars(20)
    write_bars(bars, "SPY", store=store)
    digest = file_digest(store)
    with pytest.raises(RuntimeError), write_transaction(store) as txn:
        del txn.file["SPY"]
        txn.changed = True
        raise RuntimeError("boom")
    assert file_digest(store) == digest
    assert not list(store.parent.glob(".market.h5.tmp-*"))
    assert_bitwise_equal(load("SPY", store=store), bars)


def test_readers_opening_during_replace_see_old_or_new_never_partial(store: Path) -> None:
    bars = make_bars(200)
    write_bars(bars.iloc[:100], "SPY", store=store)
    old_handle = h5py.File(store, "r")  # a reader that opened before the write
    write_bars(bars.iloc[100:], "SPY", store=store)
    assert old_handle["SPY/1d/time"].shape == (100,)  # still the old, complete file
    old_handle.close()
    assert len(load("SPY", store=store)) == 200
    assert load("SPY", store=store).index[-1] == pd.Timestamp(bars.index[-1])
