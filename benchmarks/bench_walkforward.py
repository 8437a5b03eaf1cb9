"""Walk-forward speed (issue 4): 10 folds x 5,000 combinations on SPY daily, warm."""

from __future__ import annotations

from benchmarks._util import best_and_median

GRID = "fast=5:104,slow=106:400:6"  # 100 x 50 = 5,000 combinations


def run() -> list[dict]:
    import quantlab

    kwargs = dict(train="2y", test="2y", start="2002-01-01", save=False, progress=False)
    first = quantlab.walkforward("sma_cross", "SPY", GRID, **kwargs)  # warm caches (and vectorbt import)
    folds, combos = first.summary["n_folds"], first.summary["walkforward"]["candidates_per_fold"]
    best, median = best_and_median(lambda: quantlab.walkforward("sma_cross", "SPY", GRID, **kwargs), 3)
    return [
        {
            "name": "walk-forward, warm (best of 3)",
            "value": best,
            "unit": "s",
            "target": "< 10",
            "note": f"{folds} folds x {combos} combos, SPY daily, 2 cores",
        },
        {"name": "walk-forward, warm (median of 3)", "value": median, "unit": "s", "target": "< 10"},
    ]
