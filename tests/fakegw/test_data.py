"""Contracts, historical bars, keepUpToDate streaming and market data ticks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from ib_async import IB, RequestError, Stock

from ._helpers import until
from .conftest import VERSIONS
from .server import FakeGateway

ET = ZoneInfo("US/Eastern")


def daily_frame(n: int = 60, start: str = "2024-01-02") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=n)
    close = 100 + np.arange(n, dtype=float)
    return pd.DataFrame(
        {"Open": close - 0.5, "High": close + 1, "Low": close - 1, "Close": close, "Volume": 1000.0 + np.arange(n)},
        index=idx,
    )


def minute_frame(n: int = 390, day: str = "2024-03-04") -> pd.DataFrame:
    idx = pd.date_range(f"{day} 09:30", periods=n, freq="1min")
    close = 50 + np.sin(np.arange(n) / 10.0)
    return pd.DataFrame(
        {"open": close - 0.01, "high": close + 0.05, "low": close - 0.05, "close": close, "volume": np.full(n, 100.0)},
        index=idx,
    )


def bars_frame(bars: list) -> pd.DataFrame:
    return pd.DataFrame(
        [(b.open, b.high, b.low, b.close, b.volume) for b in bars],
        columns=["open", "high", "low", "close", "volume"],
        index=[b.date for b in bars],
    )


# --- contracts ------------------------------------------------------------------


@pytest.mark.parametrize("fake_gateway", VERSIONS, indirect=True)
def test_qualify_contract_fills_conid_and_primary_exchange(ib: IB) -> None:
    spy, aapl = Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD")
    assert ib.qualifyContracts(spy, aapl) == [spy, aapl]
    assert (spy.conId, spy.primaryExchange, spy.exchange) == (756733, "ARCA", "SMART")
    assert (aapl.conId, aapl.primaryExchange, aapl.tradingClass) == (265598, "NASDAQ", "NMS")
    [details] = ib.reqContractDetails(Stock(conId=756733))
    assert details.longName == "SPDR S&P 500 ETF TRUST" and details.contract is not None
    assert details.contract.symbol == "SPY"


def test_unknown_symbol_raises_200_with_request_errors(ib: IB) -> None:
    with pytest.raises(RequestError) as info:
        ib.qualifyContracts(Stock("NOPE", "SMART", "USD"))
    assert info.value.code == 200


def test_unknown_symbol_without_request_errors_returns_none(
    fake_gateway: FakeGateway, ib_factory: Callable[..., IB]
) -> None:
    ib = ib_factory(fake_gateway, raise_errors=False)
    assert ib.qualifyContracts(Stock("NOPE", "SMART", "USD")) == [None]
    fake_gateway.add_instrument("NOPE", 999001, "NYSE")
    [c] = ib.qualifyContracts(Stock("NOPE", "SMART", "USD"))
    assert c.conId == 999001


# --- historical bars -----------------------------------------------------------------


@pytest.mark.parametrize("fake_gateway", [157, 178], indirect=True)
def test_daily_bars_equal_seeded_frame(fake_gateway: FakeGateway, ib: IB) -> None:
    frame = daily_frame()
    fake_gateway.seed_bars("SPY", frame)
    bars = ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), "", "1 Y", "1 day", "TRADES", True)
    got = bars_frame(bars)
    assert all(type(d) is dt.date for d in got.index)
    expected = frame.set_axis(["open", "high", "low", "close", "volume"], axis=1)
    expected.index = [d.date() for d in frame.index]
    pd.testing.assert_frame_equal(got, expected)
    assert fake_gateway.price("SPY") == frame["Close"].iloc[-1]  # last close is the reference price


def test_daily_duration_is_a_calendar_span_ending_at_end_date(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    end = dt.datetime(2024, 2, 29, 23, 0, tzinfo=ET)
    bars = ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), end, "30 D", "1 day", "TRADES", True)
    dates = [b.date for b in bars]
    assert dates[-1] == dt.date(2024, 2, 29)
    assert dates[0] == dt.date(2024, 1, 31)  # 30 calendar days back (exclusive): 22 weekdays, not 30 bars
    assert len(dates) == 22
    six_weeks = ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), end, "6 W", "1 day", "TRADES", True)
    assert len(six_weeks) == 30


@pytest.mark.parametrize("format_date", [1, 2])
def test_intraday_minute_bars_equal_seeded_frame(fake_gateway: FakeGateway, ib: IB, format_date: int) -> None:
    frame = minute_frame()
    fake_gateway.seed_bars("QQQ", frame)
    end = dt.datetime(2024, 3, 4, 11, 0, tzinfo=ET)
    bars = ib.reqHistoricalData(
        Stock("QQQ", "SMART", "USD"), end, "3600 S", "1 min", "TRADES", True, formatDate=format_date
    )
    got = bars_frame(bars)
    expected = frame.loc["2024-03-04 10:00":"2024-03-04 10:59"]
    assert len(got) == 60
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy())
    stamps = [pd.Timestamp(d).tz_convert(ET) for d in got.index]
    assert stamps == list(expected.index.tz_localize(ET))
    zone = got.index[0].tzinfo
    assert (zone.key if format_date == 1 else zone) == ("US/Eastern" if format_date == 1 else dt.UTC)  # type: ignore[union-attr]


def test_five_minute_bars_match_pandas_resample_of_real_spy_minutes(
    fake_gateway: FakeGateway, ib: IB, real_data: Path
) -> None:
    raw = pd.read_csv(real_data / "intraday" / "SPY_1min.csv")
    raw.columns = [c.lower() for c in raw.columns]
    stamp_col = next(c for c in raw.columns if "date" in c or "time" in c)
    raw = raw.set_index(pd.DatetimeIndex(pd.to_datetime(raw[stamp_col]))).drop(columns=[stamp_col])
    raw = raw[["open", "high", "low", "close", "volume"]].astype(float)
    fake_gateway.seed_bars("SPY", raw)
    last_day = raw.index[-1].normalize()
    bars = ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), "", "1 D", "5 mins", "TRADES", False)

    ref = raw[
        raw.index >= last_day + pd.Timedelta(hours=raw.index[-1].hour) - pd.Timedelta(days=1) + pd.Timedelta(minutes=5)
    ]
    ref = (
        ref.resample("5min")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    got = bars_frame(bars)
    got.index = [pd.Timestamp(d).tz_convert(ET).tz_localize(None) for d in got.index]
    common = got.index.intersection(ref.index)
    assert len(common) >= 70
    np.testing.assert_allclose(got.loc[common].to_numpy(), ref.loc[common].to_numpy(), rtol=1e-12)


def test_hourly_rth_bars_start_at_the_open(fake_gateway: FakeGateway, ib: IB) -> None:
    frame = minute_frame()
    fake_gateway.seed_bars("QQQ", frame)
    bars = ib.reqHistoricalData(Stock("QQQ", "SMART", "USD"), "", "1 D", "1 hour", "TRADES", True)
    starts = [b.date.astimezone(ET).strftime("%H:%M") for b in bars]  # type: ignore[attr-defined]
    assert starts == ["09:30", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00"]
    assert bars[0].volume == 30 * 100.0 and bars[1].volume == 60 * 100.0
    assert bars[0].open == frame["open"].iloc[0] and bars[-1].close == frame["close"].iloc[-1]


def test_history_failure_mode_raises_162(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame())
    fake_gateway.fail_history("SPY")
    with pytest.raises(RequestError) as info:
        ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), "", "30 D", "1 day", "TRADES", True)
    assert info.value.code == 162
    with pytest.raises(RequestError) as info:  # not seeded at all
        ib.reqHistoricalData(Stock("AAPL", "SMART", "USD"), "", "30 D", "1 day", "TRADES", True)
    assert info.value.code == 162


def test_keep_up_to_date_updates_forming_bar_then_appends(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("QQQ", minute_frame(n=30))  # 09:30 .. 09:59
    bars = ib.reqHistoricalData(Stock("QQQ", "SMART", "USD"), "", "1800 S", "5 mins", "TRADES", True, keepUpToDate=True)
    assert len(bars) == 6
    events: list[tuple[int, bool]] = []
    bars.updateEvent += lambda b, has_new: events.append((len(b), has_new))

    fake_gateway.push_bar(
        "QQQ", {"time": "2024-03-04 10:00", "open": 51, "high": 52, "low": 50.5, "close": 51.5, "volume": 10}
    )
    assert until(ib, lambda: len(events) == 1)
    assert events == [(7, True)] and (bars[-1].open, bars[-1].close, bars[-1].volume) == (51, 51.5, 10)

    fake_gateway.push_bar(
        "QQQ", {"time": "2024-03-04 10:01", "open": 51.5, "high": 53, "low": 51, "close": 52.5, "volume": 5}
    )
    assert until(ib, lambda: len(events) == 2)
    assert events[-1] == (7, False)  # same 10:00 five-minute bar, still forming
    assert (bars[-1].open, bars[-1].high, bars[-1].low, bars[-1].close, bars[-1].volume) == (51, 53, 50.5, 52.5, 15)
    assert fake_gateway.price("QQQ") == 52.5


def test_keep_up_to_date_daily_bars(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.seed_bars("SPY", daily_frame(n=10))
    bars = ib.reqHistoricalData(Stock("SPY", "SMART", "USD"), "", "1 M", "1 day", "TRADES", True, keepUpToDate=True)
    last = bars[-1].date
    fake_gateway.push_bar("SPY", {"date": last, "open": 1, "high": 300, "low": 0.5, "close": 250, "volume": 1})
    assert until(ib, lambda: bars[-1].close == 250)
    assert bars[-1].date == last and type(bars[-1].date) is dt.date and bars[-1].high == 300


def test_market_data_ticks_follow_set_price(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    fake_gateway.set_price("AAPL", 190.0)
    spy, aapl = ib.qualifyContracts(Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD"))
    ticker = ib.reqMktData(spy)  # ib_async 2.1 needs a qualified contract (hash uses conId)
    assert until(ib, lambda: ticker.last == 450.0)
    assert (ticker.bid, ticker.ask, ticker.marketDataType) == (449.99, 450.01, 1)
    fake_gateway.set_price("SPY", 451.25)
    assert until(ib, lambda: ticker.last == 451.25)
    assert ticker.bid == 451.24
    [snap] = ib.reqTickers(aapl)
    assert snap.last == 190.0


def test_delayed_market_data_uses_delayed_tick_types(fake_gateway: FakeGateway, ib: IB) -> None:
    fake_gateway.set_price("SPY", 450.0)
    ib.reqMarketDataType(3)
    [spy] = ib.qualifyContracts(Stock("SPY", "SMART", "USD"))
    ticker = ib.reqMktData(spy)
    assert until(ib, lambda: ticker.last == 450.0)
    assert until(ib, lambda: ticker.bid == 449.99 and ticker.ask == 450.01)  # 66/67 map to bid/ask
    assert ticker.marketDataType == 3
