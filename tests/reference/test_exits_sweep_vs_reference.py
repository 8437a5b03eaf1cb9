"""The sweep with exit rules equals the independent vectorbt reference replay (issue 12 item 4).

For every strategy in research/ with every exit rule (a few parameter sets each), on real
daily bars and 1-minute bars (vendored, tests/fixtures): each of the sweep's metric rows
equals the metrics vectorbt computes from :func:`quantlab.replay_exits.replay_exits` (our
rules written independently as a vectorbt order function) within 1e-9; the sweep's rows
equal single backtests with the same rules; shorts (the mirrored target) and the new costs
are checked through single backtests against the reference too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.engine.intervals import get_interval
from quantlab.engine.registry import get_strategy, list_strategies
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import evaluate_arrays, price_arrays
from quantlab.engine.sweep import run_sweep
from quantlab.kernels.layout import METRIC_NAMES
from quantlab.replay import simulate
from quantlab.replay_exit_rules import ExitRules, ExtraCosts
from quantlab.replay_exits import replay_exits
from tests.reference._exit_data import read_daily, read_minute

try:
    from quantlab.engine import exits  # type: ignore[attr-defined]
except ImportError:  # before the engine move, or before EXITS-KERNEL
    exits = pytest.importorskip("quantlab.exits", reason="EXITS-KERNEL not merged yet")

DAILY = get_interval("1d")
MINUTE = get_interval("1m")
REG = {"sec_fee_rate": 27.8e-6, "taf_per_share": 0.000166, "taf_max": 8.30}
SIMS = {
    "ib_all_whole": SimConfig(),
    "pct_fraction_frac_spread": SimConfig(
        50_000,
        Costs(model="percent", pct_fee=0.001, fixed_fee=0.5, slippage_bps=5, half_spread_bps=2.5),
        Sizing("fraction", 0.6, whole_shares=False),
    ),
    "ib_cash_reg_spread": SimConfig(
        20_000, Costs(slippage_bps=2, spread_bps={"SPY": 4.0}, **REG), Sizing("cash", 7_500)
    ),
    "ib_voltarget": SimConfig(100_000, Costs(), Sizing("vol_target", 0.12, vol_window=30)),
}
#: Each exit rule alone (two values each), the limit options, and everything together.
RULE_SETS: list[dict[str, list[float]]] = [
    {"sl_stop": [0.02, 0.06]},
    {"tp_stop": [0.03, 0.10]},
    {"sl_trail": [0.03, 0.08]},
    {"max_hold": [3, 15]},
    {"entry_limit": [0.0, 0.01], "limit_expiry": [1, 3], "limit_ticks": [0, 3]},
    {
        "sl_stop": [0.04, 0.03],
        "tp_stop": [0.08, 0.05],
        "sl_trail": [0.06, 0.02],
        "max_hold": [25, 8],
        "entry_limit": [0.002, 0.0],
        "limit_expiry": [2, 1],
    },
]


def _extra(costs: Costs, symbol: str) -> ExtraCosts:
    spread = dict(costs.spread_bps).get(symbol, 2 * costs.half_spread_bps) / 2
    return ExtraCosts(costs.sec_fee_rate, costs.taf_per_share, costs.taf_max, spread, costs.borrow_rate)


def _kernel_params(spec, rng: np.random.Generator) -> dict[str, float]:  # type: ignore[no-untyped-def]
    while True:
        row = {}
        for p in spec.kernel_params:
            hi = min(p.high, 120)
            row[p.name] = (
                float(rng.integers(p.low, hi + 1))
                if p.kind == "int"
                else float(np.round(rng.uniform(p.low, p.high), 4))
            )
        if spec.constraint_mask({k: np.array([v]) for k, v in row.items()})[0]:
            return row


def _compare(ours: np.ndarray, theirs: np.ndarray, label: str) -> None:
    for j, metric in enumerate(METRIC_NAMES):
        a, b = ours[j], theirs[j]
        assert (np.isnan(a) and np.isnan(b)) or np.isclose(a, b, rtol=1e-9, atol=1e-12), (
            f"{label}: {metric} sweep={a!r} reference={b!r}"
        )


#: Fractional rule values are scaled to the bar interval's typical range (1-minute bars
#: move ~1/20 of a daily bar), so the rules fire in most runs.
FRACTIONS = ("sl_stop", "tp_stop", "sl_trail", "entry_limit")


def _check_strategy(  # type: ignore[no-untyped-def]
    name: str,
    bars: dict[str, pd.DataFrame],
    interval,
    start: int,
    seed: int,
    scale: float = 1.0,
    end: int | None = None,
) -> int:
    """Every rule set on alternating symbols (two parameter sets each); returns the runs checked."""
    base = get_strategy(name)
    rng = np.random.default_rng(seed)
    sims = list(SIMS.items())
    checked = traded = 0
    for r, rule_set in enumerate(RULE_SETS):
        spec = exits.with_exits(base, list(rule_set))
        exit_names = [p.name for p in spec.exit_params]
        for s, (symbol, frame) in enumerate(bars.items()):
            if (r + s) % len(bars):
                continue
            sim_name, sim = sims[r % len(sims)]
            prices = price_arrays(frame, symbol)
            rows, refs = [], []
            for v in range(2):
                kp = _kernel_params(spec, rng)
                values = {k: rule_set[k][v] * (scale if k in FRACTIONS else 1) for k in exit_names}
                rows.append([*kp.values(), *[values[k] for k in exit_names]])
                target = evaluate_arrays(spec, prices, kp)
                ref = replay_exits(
                    target, prices, sim, interval, ExitRules(**values), _extra(sim.costs, symbol), start=start, end=end
                )
                refs.append((ref, target))
            out = run_sweep(spec, prices, np.array(rows), sim, interval, start=start, end=end)
            for i, (ref, target) in enumerate(refs):
                label = f"{name} {symbol} {sim_name} {rows[i]}"
                _compare(out.metrics[i], ref.metrics(interval).to_numpy()[0], label)
                single = simulate(
                    target,
                    prices,
                    sim,
                    interval,
                    start,
                    end,
                    exits=exits.exit_vector(spec, dict(zip(spec.param_names, rows[i], strict=True))),
                )
                np.testing.assert_allclose(
                    [single.metrics[m] for m in METRIC_NAMES],
                    out.metrics[i],
                    rtol=1e-12,
                    atol=1e-12,
                    equal_nan=True,
                    err_msg=f"{label}: single backtest vs sweep",
                )
                checked += 1
                traded += bool(ref.exits)
    assert traded >= checked // 3, f"{name}: rules fired in only {traded} of {checked} runs"
    return checked


@pytest.mark.parametrize("name", [s.name for s in list_strategies()])
def test_sweep_with_exits_equals_reference_daily(name: str, real_data: Path) -> None:
    bars = {s: read_daily(real_data, s) for s in ("SPY", "AAPL")}
    # 2,400 bars, mid-2001 to 2011 (2008's gaps included): the reference is plain Python
    # (~0.6 ms a bar), so the window is what exercises every rule, not the whole history.
    assert _check_strategy(name, bars, DAILY, start=400, end=2800, seed=abs(hash(name)) % 2**32) == len(RULE_SETS) * 2


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion", "donchian_atr"])
def test_sweep_with_exits_equals_reference_minute(name: str, real_data: Path) -> None:
    bars = {"SPY": read_minute(real_data, "SPY_1min"), "QQQ": read_minute(real_data, "QQQ_1min")}
    assert _check_strategy(name, bars, MINUTE, start=60, seed=7, scale=0.05) == len(RULE_SETS) * 2


SHORT_CASES = [
    pytest.param(rules, shape, id=f"{shape}-{'-'.join(rules)}")
    for rules in (
        {"sl_stop": 0.03, "tp_stop": 0.05},
        {"sl_trail": 0.04, "max_hold": 12},
        {"entry_limit": 0.005, "limit_expiry": 2, "sl_stop": 0.04},
    )
    for shape in ("short", "flip")
]


@pytest.mark.parametrize("rules,shape", SHORT_CASES)
def test_single_backtest_shorts_and_borrow_equal_reference(
    rules: dict[str, float], shape: str, real_data: Path
) -> None:
    """Short-only (the mirrored target) and always-in long/short flips (reversals through
    exits and limits), with borrow and regulatory fees: fills and value path."""
    prices = price_arrays(read_daily(real_data, "QQQ"), "QQQ")
    signal = evaluate_arrays(get_strategy("sma_cross"), prices, {"fast": 10, "slow": 40})
    target = -signal if shape == "short" else 2 * signal - 1
    sim = SimConfig(
        100_000,
        Costs(slippage_bps=3, borrow_rate=0.04, half_spread_bps=1, **REG),
        Sizing("fraction", 0.5, allow_short=True),
    )
    ex = exits.no_exits()
    for k, v in rules.items():
        ex[exits.exit_slot(k)] = v
    ours = simulate(target, prices, sim, DAILY, 200, exits=ex)
    ref = replay_exits(target, prices, sim, DAILY, ExitRules(**rules), _extra(sim.costs, "QQQ"), start=200)
    assert ref.exits and ref.borrow.sum() > 0
    np.testing.assert_allclose(ours.value, ref.value.to_numpy(), rtol=1e-9)
    fills = ref.fills()
    assert len(fills) == len(ours.orders)
    np.testing.assert_allclose([f[2] for f in fills], ours.orders[:, _o_size()], rtol=1e-12)


def _o_size() -> int:
    from quantlab.kernels.layout import O_SIZE  # type: ignore[attr-defined]

    return int(O_SIZE)


def test_costs_mapping_is_complete() -> None:
    """Every cost setting the kernel knows reaches the reference (a new one must be added)."""
    known = {f.name for f in dataclasses.fields(Costs)}
    mapped = {
        "model",
        "per_share",
        "min_fee",
        "max_pct",
        "pct_fee",
        "fixed_fee",
        "slippage_bps",
        "half_spread_bps",
        "spread_bps",
        "sec_fee_rate",
        "taf_per_share",
        "taf_max",
        "borrow_rate",
    }
    assert known == mapped
