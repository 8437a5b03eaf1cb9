"""Chunks on a Dask distributed cluster: ``local:N`` (a LocalCluster) or ``tcp://HOST:8786``.

Bars, the strategy and the parameter rows are scattered to every worker once (workers
never open the HDF5 store); each worker loads or compiles the strategy's kernels once
(the warm-up, reported per worker) before any chunk runs; chunks are retried by the
scheduler when a worker is lost or a chunk raises, and a chunk that fails on every
attempt fails the run, naming its symbol and parameter range.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import numpy as np

from quantlab.engine.backends.base import ChunkedBackend, SweepError, describe_chunk, say
from quantlab.engine.backends.chunks import Chunk, ChunkResult, run_chunk
from quantlab.engine.sweep import run_sweep
from quantlab.errors import ConfigError

if TYPE_CHECKING:
    from quantlab.engine.backends.base import MarketInputs
    from quantlab.engine.settings import SimConfig
    from quantlab.engine.strategy import StrategySpec

RETRIES = 2
# Dask's background bookkeeping, tuned for a few long CPU-bound tasks (measured on a 2-core
# box: ~50 ms of CPU per second of wall between an idle local:1 worker and its client, most
# of it the 10 ms statistical profiler, the 20 ms event-loop tick and the system monitor).
# Applied to the LocalCluster this client starts; remote workers take the same settings from
# their environment (docs/scaling.md).
QUIET_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "500ms",
    # The Active Memory Manager's ReduceReplicas drops the broadcast copies of the bars and
    # rows down to one; losing that worker then loses data no task can recompute, and every
    # pending chunk is cancelled ("lost dependencies") instead of rerun elsewhere.
    "distributed.scheduler.active-memory-manager.start": False,
}
AMM_WARNING = (
    "dask: warning: the scheduler runs the Active Memory Manager, which keeps one copy of the "
    "scattered bars; a lost worker can then fail the run (resume it with the same command). Start the "
    "scheduler with DASK_DISTRIBUTED__SCHEDULER__ACTIVE_MEMORY_MANAGER__START=False (docs/scaling.md)"
)
START_A_SCHEDULER = (
    "start one with `dask scheduler` (listens on tcp://HOST:8786) and on each machine "
    "`dask worker tcp://HOST:8786`, or use --cluster local:N for worker processes on this machine"
)


def worker_versions() -> dict[str, str]:
    """Runs on each worker: the versions that must match the client's."""
    import numba
    import numpy

    import quantlab

    return {"quantlab": quantlab.__version__, "numba": numba.__version__, "numpy": numpy.__version__}


def _import_kernel_module(spec: StrategySpec) -> None:
    """Code generation reads the kernel's module source; an unpickled spec does not import it."""
    import importlib

    importlib.import_module(spec.kernel.py_func.__module__)


def writeable(prices: Any) -> Any:
    """Arrays that arrive through Dask are read-only views of the message buffer, and numba
    types a read-only array differently: the workers would need their own specialisation of
    the kernels (a second compile on a cold cache) instead of the one in-process runs cache.
    A copy keeps the in-process signature (one symbol's daily bars: ~0.3 MB, microseconds)."""
    if prices.close.flags.writeable:
        return prices
    from quantlab.engine.signals import PriceArrays
    from quantlab.engine.strategy import PRICE_FIELDS

    return PriceArrays(prices.symbol, prices.index, *(np.array(prices.field(f)) for f in PRICE_FIELDS))


def warm_up(spec: StrategySpec, prices: Any, sim: SimConfig, interval: Any) -> float:
    """Runs on each worker: load (or compile) the kernels with a one-row sweep; seconds taken."""
    began = time.perf_counter()
    _import_kernel_module(spec)
    prices = writeable(prices)
    row = np.array([[spec.defaults()[n] for n in spec.param_names]], dtype=np.float64)
    run_sweep(spec, prices, row, sim, interval, 0, len(prices))
    return time.perf_counter() - began


def _chunk_task(
    spec: StrategySpec, prices: Any, values: np.ndarray, sim: SimConfig, interval: Any, chunk: Chunk
) -> ChunkResult:
    _import_kernel_module(spec)
    return run_chunk(spec, writeable(prices), values, sim, interval, chunk)


class DaskBackend(ChunkedBackend):
    """Chunks as Dask tasks, in as-completed order; see the module docstring."""

    name = "dask"

    def __init__(self, address: str, chunk_size: int | None = None, resume: str | None = None) -> None:
        super().__init__(chunk_size, resume)
        self.address = address
        self._client: Any = None
        self._cluster: Any = None
        self._scattered: dict[tuple[str, str], Any] = {}
        self._warm: set[tuple[str, str]] = set()  # (strategy, worker address)
        self.warmup_seconds: dict[str, float] = {}
        self.n_workers = 0

    def begin_run(self, kind: str, cfg_hash: str, data_hash: str, reports: Any) -> Any:
        self.client()  # an unreachable or mismatched cluster fails before any run folder exists
        return super().begin_run(kind, cfg_hash, data_hash, reports)

    # -- connection -----------------------------------------------------------------
    def client(self) -> Any:
        if self._client is not None:
            return self._client
        import dask
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(logging.ERROR)
        if self.address.startswith("local:"):
            n = int(self.address.split(":", 1)[1])
            # the workers share this machine's cores: numba threads per worker so that N
            # workers together use every core once (oversubscribed threads only contend)
            threads = max(1, (os.cpu_count() or 1) // n)
            with dask.config.set(QUIET_CONFIG):
                self._cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,
                    env={"NUMBA_NUM_THREADS": str(threads)},
                )
                self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(self.address, timeout=os.environ.get("QUANTLAB_CLUSTER_TIMEOUT", "10s"))
            except (OSError, TimeoutError) as err:
                raise ConfigError(
                    "cannot reach the Dask scheduler", found=f"{self.address} ({err})", fix=START_A_SCHEDULER
                ) from None
            try:
                self._client.wait_for_workers(1, timeout=30)
            except (OSError, TimeoutError):
                self.close_client()
                raise ConfigError(
                    "the Dask scheduler has no workers", found=self.address, fix=f"start workers: {START_A_SCHEDULER}"
                ) from None
        self._check_versions()
        self.n_workers = len(self._client.scheduler_info()["workers"])
        say(f"dask: {self.n_workers} workers at {self._client.scheduler.address}")
        if self._client.amm.running():  # a scheduler someone else started: say it, do not change it
            say(AMM_WARNING)
        return self._client

    def _check_versions(self) -> None:
        mine = worker_versions()
        theirs = self._client.run(worker_versions)
        wrong = {addr: v for addr, v in theirs.items() if v != mine}
        if wrong:
            addr, v = next(iter(wrong.items()))
            self.close_client()
            raise ConfigError(
                f"{len(wrong)} Dask worker(s) run other versions than this client; their results could differ",
                found=f"{addr}: {v}, client: {mine}",
                fix="install the same quantlab (and numba, numpy) on every worker machine and restart the workers",
            )

    def _scatter(self, tag: tuple[str, str], obj: Any) -> Any:
        if tag not in self._scattered:
            self._scattered[tag] = self.client().scatter(obj, broadcast=True, hash=False)
        return self._scattered[tag]

    def _warm_up(self, spec: StrategySpec, inputs: MarketInputs, sim: SimConfig, spec_f: Any) -> None:
        client = self.client()
        workers = list(client.scheduler_info()["workers"])
        cold = [w for w in workers if (spec.name, w) not in self._warm]
        if not cold:
            return
        symbol = inputs.symbols[0]
        prices = self._scatter((inputs.data_hash, symbol), inputs.prices[symbol])
        futures = {
            w: client.submit(
                warm_up, spec_f, prices, sim, inputs.interval, workers=[w], allow_other_workers=False, pure=False
            )
            for w in cold
        }
        for w, fut in futures.items():
            try:
                self.warmup_seconds[w] = float(fut.result())
            except Exception as err:  # the worker's own exception type, forwarded by Dask
                raise ConfigError(
                    f"Dask worker {w} cannot load the kernels of strategy {spec.name!r}",
                    found=f"{type(err).__name__}: {err}",
                    fix="install the same quantlab and strategy code on every worker (a strategy file must be importable there)",
                ) from None
            self._warm.add((spec.name, w))
        say("dask: kernels warm on " + ", ".join(f"{w} in {self.warmup_seconds[w]:.2f}s" for w in cold))

    def execute(
        self, spec: StrategySpec, inputs: MarketInputs, values: np.ndarray, sim: SimConfig, chunks: list[Chunk]
    ) -> Generator[tuple[Chunk, ChunkResult], None, None]:
        if not chunks:
            return
        from distributed import as_completed

        client = self.client()
        spec_f = self._scatter(("spec", spec.name), spec)
        self._warm_up(spec, inputs, sim, spec_f)
        prices = {
            s: self._scatter((inputs.data_hash, s), inputs.prices[s]) for s in dict.fromkeys(c.symbol for c in chunks)
        }
        values_f = client.scatter(values, broadcast=True, hash=False)  # per sweep: folds differ
        futures = {
            client.submit(
                _chunk_task, spec_f, prices[c.symbol], values_f, sim, inputs.interval, c, retries=RETRIES, pure=False
            ): c
            for c in chunks
        }
        try:
            for fut in as_completed(futures):
                chunk = futures.pop(fut)
                try:
                    result = fut.result()
                except Exception as err:  # re-raised worker exception, after RETRIES retries
                    raise SweepError(
                        f"a sweep chunk failed {RETRIES + 1} times: {describe_chunk(spec, values, chunk)}",
                        found=f"{type(err).__name__}: {err}",
                        fix="the finished chunks are checkpointed; fix the cause and rerun the same command to resume",
                    ) from None
                fut.release()  # the worker drops its copy now, not at the end of the sweep
                yield chunk, result
        finally:
            for fut in futures:
                fut.cancel()
            values_f.release()  # walk-forward scatters one set of rows per fold

    def report(self) -> dict[str, Any]:
        out = super().report()
        out.update(
            {
                "cluster": self.address,
                "workers": self.n_workers,
                "warmup_seconds": {w: round(s, 3) for w, s in self.warmup_seconds.items()},
            }
        )
        return out

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.close_client()
