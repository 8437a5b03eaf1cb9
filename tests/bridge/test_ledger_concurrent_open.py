"""Several processes creating one new ledger at the same moment all succeed (the schema is built once).

Regression: two `bridge run` started together raced in the schema migration ("table meta already
exists") before either reached the ledger lock, so the loser died with the wrong message.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from bridge.ledger.store import SCHEMA_VERSION, Ledger


def _open(path: str, barrier: mp.synchronize.Barrier, out: mp.Queue) -> None:  # type: ignore[name-defined]
    barrier.wait()
    try:
        ledger = Ledger(path)
        out.put(("ok", int(ledger.db.execute("PRAGMA user_version").fetchone()[0])))
        ledger.close()
    except Exception as err:  # noqa: BLE001 - reported to the parent
        out.put(("error", repr(err)))


def test_processes_opening_a_new_ledger_together_all_succeed(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for attempt in range(5):
        path = str(tmp_path / f"new-{attempt}.sqlite")
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(path, barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert results == [("ok", SCHEMA_VERSION)] * 6, results
