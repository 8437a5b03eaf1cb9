"""Scale-out (issue 14): the chunked Dask backend against today's in-process sweep.

All figures are sweeps of sma_cross over the last 2,520 bars of bundled SPY daily with 16
CSCV blocks, through ``quantlab.optimizer.evaluate.evaluate`` (the call the optimizer and
walk-forward make), each scenario in a fresh interpreter:

* throughput in-process (numba threads) vs ``local:1`` and ``local:2`` at 1e5 and 1e6
  combinations; the distributed path's overhead = its wall time over in-process's - 1
  (cluster start-up excluded and reported separately; per-worker kernel warm-up included
  in the start-up);
* resume: a checkpointed in-process chunked sweep of 5e5 combinations interrupted at 50%
  of its chunks, then finished with ``--resume`` semantics, vs a full rerun;
* 1e7 combinations: wall time and peak RSS of the sweep (in-process). This is the sweep
  only: the optimizer's tables on top of it are not yet streamed (see docs/scaling.md).

Parameter rows are random (seeded) SMA pairs; a sweep's cost does not depend on the values.
"""

from __future__ import annotations

import json

from benchmarks._util import run_python

_SETUP = """
import json, resource, time
import numpy as np
from quantlab.inputs import load_inputs
from quantlab.engine.settings import SimConfig
from quantlab.engine.registry import get_strategy
from quantlab.optimizer.evaluate import Window, evaluate
spec = get_strategy("sma_cross")
inputs = load_inputs("SPY", "1d", None, None, None, None)
n_bars = len(inputs.prices["SPY"])
windows = {{"SPY": Window(n_bars - 2520, n_bars)}}
rng = np.random.default_rng(7)
n = int({n})
fast = rng.integers(2, 100, n).astype(np.float64)
values = np.column_stack([fast, fast + rng.integers(1, 200, n)])
sim = SimConfig()
evaluate(spec, inputs, values[:64], sim, windows, 16)  # kernels loaded
"""

_SWEEP = _SETUP + """
from quantlab.engine.backends import make_backend, use_backend
backend = make_backend({cluster!r})
with use_backend(backend):
    t0 = time.perf_counter()
    if backend is not None:
        backend.client()
        evaluate(spec, inputs, values[:64], sim, windows, 16)  # warm-up on every worker
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluate(spec, inputs, values, sim, windows, 16)
    wall = time.perf_counter() - t0
print(json.dumps({{"wall": wall, "startup": startup, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

_RESUME = _SETUP + """
import tempfile
from quantlab.engine.backends import InProcessChunked, use_backend
reports = tempfile.mkdtemp()

class Stop(Exception):
    pass

def run(resume, stop_at=None):
    backend = InProcessChunked(None, resume)
    backend.begin_run("optimize", "b" * 64, inputs.data_hash, reports)
    def progress(done):
        if stop_at is not None and done >= stop_at:
            raise Stop
    t0 = time.perf_counter()
    with use_backend(backend):
        try:
            evaluate(spec, inputs, values, sim, windows, 16, progress)
        except Stop:
            pass
    return time.perf_counter() - t0, backend

full, _ = run(None)
import shutil; shutil.rmtree(reports); reports = tempfile.mkdtemp()
first, b1 = run(None, stop_at=n // 2)
rest, b2 = run(b1.run.run_id)
print(json.dumps({{"full": full, "first": first, "rest": rest, "reused": b2.chunks_reused, "computed": b2.chunks_computed,
                  "total": b2.chunks_total}}))
"""


def run() -> list[dict]:  # type: ignore[type-arg]
    figures: list[dict] = []  # type: ignore[type-arg]
    walls: dict[tuple[str, int], float] = {}
    for n in (100_000, 1_000_000):
        for cluster in (None, "local:1", "local:2"):
            out = run_python(_SWEEP.format(n=n, cluster=cluster), timeout=900)
            label = cluster or "in-process"
            walls[(label, n)] = out["wall"]
            figures.append({"name": f"sweep {n:.0e} combos, {label}", "value": n * 2520 / out["wall"] / 1e6,
                            "unit": "M evals/s", "note": f"wall {out['wall']:.2f}s, start-up {out['startup']:.1f}s"})
        for label in ("local:1", "local:2"):
            overhead = walls[(label, n)] / walls[("in-process", n)] - 1
            figures.append({"name": f"distributed overhead {n:.0e} combos, {label}", "value": 100 * overhead, "unit": "%",
                            "target": "< 10 at 1e6 (local:2 vs in-process)" if n == 1_000_000 and label == "local:2" else None})
    out = run_python(_RESUME.format(n=500_000), timeout=900)
    figures += [
        {"name": "resume 5e5 combos: full run (checkpointed)", "value": out["full"], "unit": "s"},
        {"name": "resume 5e5 combos: finish after stop at 50%", "value": out["rest"], "unit": "s",
         "note": f"{out['reused']} chunks reused, {out['computed']} computed of {out['total']}"},
    ]
    out = run_python(_SWEEP.format(n=10_000_000, cluster=None), timeout=900)
    figures += [
        {"name": "sweep 1e7 combos x 2520 bars, in-process: wall", "value": out["wall"], "unit": "s"},
        {"name": "sweep 1e7 combos x 2520 bars, in-process: peak RSS", "value": out["rss_mb"], "unit": "MB",
         "target": "< 4096 (whole optimize; sweep only here)"},
    ]
    return [{k: v for k, v in f.items() if v is not None} for f in figures]


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
