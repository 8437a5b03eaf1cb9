"""Run every ``benchmarks/bench_*.py`` and write the figures to results files.

Each bench module defines ``run() -> list[dict]``; each dict is one figure with keys
``name``, ``value``, ``unit`` and optionally ``target`` and ``note``. Figures go to
``benchmarks/results.json`` (machine-readable, with machine facts) and
``benchmarks/results.md`` (the table quoted in issue notes). Speed is measured here,
never asserted in tests.

Each bench runs in a fresh interpreter, so one bench's threads, caches or memory never
disturb another's figures.

Usage: ``python benchmarks/run.py [NAME ...]`` runs the named benches only
(e.g. ``sweep data``) and merges their figures into the existing results.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _machine() -> dict[str, object]:
    import numpy as np

    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        sha = ""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "git_sha": sha,
    }


_CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from benchmarks import {module} as bench
print("@@FIGURES@@" + json.dumps(bench.run()))
"""


def _run_isolated(path: Path) -> list[dict]:  # type: ignore[type-arg]
    """Run one bench module's ``run()`` in a fresh interpreter and return its figures."""
    code = _CHILD.format(root=str(ROOT), module=path.stem)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@FIGURES@@")]
    if proc.returncode != 0 or not marker:
        raise RuntimeError(f"bench process exited with {proc.returncode}")
    return json.loads(marker[-1].removeprefix("@@FIGURES@@"))  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    wanted = set(argv)
    benches = sorted(HERE.glob("bench_*.py"))
    if wanted:
        benches = [b for b in benches if b.stem.removeprefix("bench_") in wanted]
    results_path = HERE / "results.json"
    previous = json.loads(results_path.read_text()) if results_path.exists() else {"benches": {}}
    out = {"machine": _machine(), "benches": dict(previous.get("benches", {}))}
    failed = False
    for path in benches:
        name = path.stem.removeprefix("bench_")
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        try:
            figures = _run_isolated(path)
        except Exception as err:  # a failing bench is reported, the others still run
            failed = True
            print(f"   FAILED: {err!r}", flush=True)
            figures = [{"name": "error", "value": repr(err), "unit": ""}]
        for fig in figures:
            target = f" (target {fig['target']})" if fig.get("target") else ""
            print(f"   {fig['name']}: {fig['value']} {fig.get('unit', '')}{target}", flush=True)
        out["benches"][name] = {"seconds": round(time.perf_counter() - start, 2), "figures": figures}
    results_path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    (HERE / "results.md").write_text(_markdown(out))
    print(f"wrote {results_path} and {HERE / 'results.md'}")
    return 1 if failed else 0


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _markdown(out: dict) -> str:  # type: ignore[type-arg]
    m = out["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {m['cpu_count']} cores, {m['machine']}, Python {m['python']}, numpy {m['numpy']}; "
        f"run {m['date']} at {m['git_sha'][:10]}.",
        "",
        "| bench | figure | value | unit | target | note |",
        "|---|---|---|---|---|---|",
    ]
    for bench, data in sorted(out["benches"].items()):
        for fig in data["figures"]:
            lines.append(
                f"| {bench} | {fig['name']} | {_fmt(fig['value'])} | {fig.get('unit', '')} | "
                f"{fig.get('target', '')} | {fig.get('note', '')} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
