"""Commission, sizing and a hand-computed trade list; IB's schedule proven order by order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlab.engine.intervals import get_interval
from quantlab.engine.settings import Costs, SimConfig, Sizing
from quantlab.engine.signals import price_arrays
from quantlab.errors import ConfigError
from quantlab.kernels.costs import commission_nb
from quantlab.kernels.sizing import affordable_buy_nb, target_shares_nb
from quantlab.replay import portfolio, simulate, vbt_metrics

DAILY = get_interval("1d")
IB = SimConfig(costs=Costs(slippage_bps=0)).to_array()


@pytest.mark.parametrize(
    ("qty", "price", "expected", "why"),
    [
        (100, 50.0, 1.00, "0.50 per-share is below the $1 minimum"),
        (1000, 50.0, 5.00, "0.005 x 1000"),
        (300, 0.20, 0.60, "1% of the $60 trade value caps the $1.50 per-share fee (and the minimum)"),
        (50, 1.0, 0.50, "trade worth $50: the 1% cap ($0.50) is below the $1 minimum"),
        (12_345, 400.0, 61.725, "0.005 x 12345"),
        (0, 100.0, 0.0, "no order, no fee"),
    ],
)
def test_ib_fixed_commission(qty: float, price: float, expected: float, why: str) -> None:
    assert commission_nb(float(qty), price, IB) == pytest.approx(expected, abs=1e-12), why


def test_percent_commission_and_fixed_fee() -> None:
    cfg = SimConfig(costs=Costs(model="percent", pct_fee=0.001, fixed_fee=0.25)).to_array()
    assert commission_nb(200.0, 50.0, cfg) == pytest.approx(10.0 + 0.25)


@settings(max_examples=200, deadline=None)
@given(q=st.floats(1, 1e6), dq=st.floats(0, 1e4), p=st.floats(0.01, 5_000))
def test_commission_is_monotone_in_quantity(q: float, dq: float, p: float) -> None:
    assert commission_nb(q + dq, p, IB) >= commission_nb(q, p, IB)


def test_sizing_modes() -> None:
    equity, price = 100_000.0, 333.0
    assert target_shares_nb(1.0, equity, price, 0.0, SimConfig().to_array()) == 300  # floor(100000/333)
    assert target_shares_nb(0.5, equity, price, 0.0, SimConfig(sizing=Sizing("fraction", 0.5)).to_array()) == 75
    assert target_shares_nb(1.0, equity, price, 0.0, SimConfig(sizing=Sizing("cash", 10_000)).to_array()) == 30
    vt = SimConfig(sizing=Sizing("vol_target", 0.10)).to_array()
    assert target_shares_nb(1.0, equity, price, 0.20, vt) == 150  # half exposure at twice the target vol
    assert target_shares_nb(1.0, equity, price, 0.05, vt) == 300  # capped at max_leverage 1
    assert np.isnan(target_shares_nb(1.0, equity, price, np.nan, vt))
    frac = SimConfig(sizing=Sizing("all", whole_shares=False)).to_array()
    assert target_shares_nb(1.0, equity, price, 0.0, frac) == pytest.approx(equity / price)
    assert target_shares_nb(-1.0, equity, price, 0.0, SimConfig().to_array()) == 0  # no shorting by default


def test_affordable_buy_respects_commission() -> None:
    # $10,000 cash at $100: 100 shares cost $10,000 + $1 fee -> only 99 fit.
    assert affordable_buy_nb(100.0, 10_000.0, 100.0, IB) == 99
    frac = SimConfig(costs=Costs(slippage_bps=0), sizing=Sizing(whole_shares=False)).to_array()
    q = affordable_buy_nb(100.0, 10_000.0, 100.0, frac)
    assert q * 100.0 + commission_nb(q, 100.0, frac) == pytest.approx(10_000.0, abs=1e-6)


def test_bad_costs_and_sizing_are_rejected() -> None:
    with pytest.raises(ConfigError, match="per_share"):
        Costs(per_share=-0.01)
    with pytest.raises(ConfigError, match="unknown cost model"):
        Costs(model="tiered")
    with pytest.raises(ConfigError, match="margin"):
        Sizing("fraction", 1.5)
    with pytest.raises(ConfigError, match="initial cash"):
        SimConfig(init_cash=0)


def _bars() -> pd.DataFrame:
    """20 hand-made daily bars."""
    opens = [10, 10.2, 10.1, 10.5, 11, 11.2, 11, 10.8, 10.5, 10.7, 11, 11.5, 12, 12.2, 12, 11.8, 12.5, 13, 13.1, 13.3]
    closes = [
        10.1,
        10.0,
        10.4,
        10.9,
        11.1,
        11.0,
        10.9,
        10.6,
        10.6,
        10.9,
        11.4,
        11.9,
        12.1,
        12.0,
        11.9,
        12.4,
        12.9,
        13.0,
        13.2,
        13.4,
    ]
    index = pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) + 0.1,
            "low": np.minimum(opens, closes) - 0.1,
            "close": closes,
            "volume": 1e6,
        },
        index=index,
        dtype="float64",
    )


def test_hand_computed_trade_list() -> None:
    """Target 1 at bar 2, 0 at bar 8, 0.5 at bar 12: orders at the next opens, IB fees."""
    bars = _bars()
    prices = price_arrays(bars, "X")
    target = np.full(20, np.nan)
    target[2:8] = 1.0
    target[8:12] = 0.0
    target[12:] = 0.5
    sim = SimConfig(init_cash=1_000.0, costs=Costs(slippage_bps=0))
    record = simulate(target, prices, sim, DAILY)
    # Bar 3 open 10.5: equity 1000 at close 10.4 -> floor(1000/10.4) = 96 shares wanted;
    # 96 x 10.5 + $1 = 1009 > 1000, so the fill is cut to 95 (95 x 10.5 + 1 = 998.5). Cash 1.5.
    # Bar 9 open 10.7: sell 95 -> +1016.5 - $1 = 1015.5. Cash 1017.0.
    # Bar 13 open 12.2: equity 1017 at close 12.1, half -> floor(508.5/12.1) = 42 shares;
    # cost 42 x 12.2 + 1 = 513.4. Cash 503.6. Final value 503.6 + 42 x 13.4 = 1066.4.
    orders = {int(i): float(s) for i, s in enumerate(record.size) if not np.isnan(s)}
    assert orders == {3: 95.0, 9: -95.0, 13: 42.0}
    np.testing.assert_allclose(record.fee[[3, 9, 13]], [1.0, 1.0, 1.0])
    assert record.value[-1] == pytest.approx(1066.4, abs=1e-9)
    assert record.metrics["n_trades"] == 2 and record.metrics["win_rate"] == 1.0
    # PnL of the closed round trip: 1015.5 - 998.5 = 17.0; profit factor inf (no losers)
    assert record.metrics["profit_factor"] == np.inf
    pf = portfolio(record, prices, sim, DAILY)
    assert pf.value().iloc[-1] == pytest.approx(1066.4, abs=1e-9)
    assert float(pf.positions.closed.pnl.sum()) == pytest.approx(17.0, abs=1e-9)
    assert vbt_metrics(pf, DAILY).iloc[0]["fees"] == pytest.approx(3.0)


def test_slippage_moves_fill_prices() -> None:
    prices = price_arrays(_bars(), "X")
    target = np.full(20, np.nan)
    target[0] = 1.0
    target[5] = 0.0
    sim = SimConfig(init_cash=1_000.0, costs=Costs(slippage_bps=100))  # 1%
    record = simulate(target, prices, sim, DAILY)
    pf = portfolio(record, prices, sim, DAILY)
    fills = pf.orders.records
    np.testing.assert_allclose(fills["price"], [10.2 * 1.01, 11.0 * 0.99])


def test_order_function_replay_matches_independently(daily: dict[str, pd.DataFrame]) -> None:
    """vectorbt's from_order_func, sizing from its own cash and position state with the
    shared sizing/cost kernels, produces the same orders as our simulator."""
    import vectorbt as vbt
    from numba import njit
    from vectorbt.portfolio import nb as pnb
    from vectorbt.portfolio.enums import NoOrder

    from quantlab.engine.registry import get_strategy
    from quantlab.engine.signals import evaluate_arrays
    from quantlab.kernels.costs import fill_price_nb

    @njit
    def order_func_nb(c, target, open_, close, cfg, last):  # type: ignore[no-untyped-def]
        i = c.i
        if i == 0:
            return NoOrder
        t = target[i - 1]
        if np.isnan(t) or t == last[0]:
            return NoOrder
        last[0] = t
        equity = c.cash_now + c.position_now * close[i - 1]
        delta = target_shares_nb(t, equity, close[i - 1], 0.0, cfg) - c.position_now
        if delta > 0:
            delta = affordable_buy_nb(delta, c.cash_now, open_[i], cfg)
        if delta == 0:
            return NoOrder
        fee = commission_nb(abs(delta), fill_price_nb(open_[i], delta > 0, cfg), cfg)
        return pnb.order_nb(size=delta, price=open_[i], fixed_fees=fee, slippage=cfg[7])

    spec = get_strategy("sma_cross")
    prices = price_arrays(daily["SPY"], "SPY")
    target = evaluate_arrays(spec, prices, {"fast": 15, "slow": 60})
    sim = SimConfig(costs=Costs(slippage_bps=2))
    cfg = sim.to_array()
    pf = vbt.Portfolio.from_order_func(
        pd.Series(prices.close, index=prices.index),
        order_func_nb,
        target,
        prices.open,
        prices.close,
        cfg,
        np.array([np.nan]),
        init_cash=sim.init_cash,
        freq="1D",
    )
    record = simulate(target, prices, sim, DAILY)
    theirs = pf.orders.records
    ours = record.size[~np.isnan(record.size)]
    np.testing.assert_array_equal(np.where(theirs["side"] == 0, theirs["size"], -theirs["size"]), ours)
    np.testing.assert_allclose(pf.value().to_numpy(), record.value, rtol=1e-12)


@settings(max_examples=300, deadline=None)
@given(cash=st.floats(0, 1e12), price=st.floats(0.01, 5_000), want=st.floats(0, 1e10))
def test_affordable_whole_shares_is_the_largest_affordable_count(cash: float, price: float, want: float) -> None:
    q = affordable_buy_nb(float(np.floor(want)), cash, price, IB)
    assert q == np.floor(q) and 0 <= q <= np.floor(want)
    cost = lambda k: k * price + commission_nb(k, price, IB)  # noqa: E731
    if q > 0:
        assert cost(q) <= cash
    if q < np.floor(want):
        assert cost(q + 1) > cash


def test_huge_accounts_size_quickly_and_cash_is_capped() -> None:
    assert affordable_buy_nb(1e15, 1e12, 1.0, IB) == pytest.approx(1e12 / 1.005, rel=1e-9)
    with pytest.raises(ConfigError, match="at most 1e"):
        SimConfig(init_cash=1e17)


def test_percent_fee_given_in_percent_is_refused() -> None:
    with pytest.raises(ConfigError, match="percent/fraction mix-up"):
        Costs(model="percent", pct_fee=0.5)
