"""fetch/update through the real yfinance 1.7 with recorded Yahoo responses replayed
underneath it (see ``yahoo_replay.py``), plus a test that swaps the download seam."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlab.data import FetchOptions, fetch, info, load, update, write_bars
from quantlab.data._yahoo import (
    DownloadRequest,
    OfflineError,
    normalize_download,
    probe_yahoo,
    yfinance_download,
)

from .conftest import file_digest
from .yahoo_replay import FakeYahoo, install, load_chart


@pytest.fixture
def yahoo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeYahoo:
    server = FakeYahoo(
        {
            ("SPY", "1d"): load_chart("SPY_1d"),
            ("QQQ", "1d"): load_chart("QQQ_1d"),
            ("SPY", "1m"): load_chart("SPY_1m"),
        }
    )
    install(monkeypatch, server, tmp_path / "yf-cache")
    return server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _options(sleeps: Sleeps | None = None, **kwargs: object) -> FetchOptions:
    return FetchOptions(probe=None, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)  # type: ignore[arg-type]


def _chart_frame(name: str) -> pd.DataFrame:
    result = load_chart(name)["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    frame = pd.DataFrame({k: np.asarray(quote[k], dtype=float) for k in ("open", "high", "low", "close", "volume")})
    if "adjclose" in result["indicators"]:
        frame["adj_close"] = result["indicators"]["adjclose"][0]["adjclose"]
    frame.index = pd.to_datetime(result["timestamp"], unit="s", utc=True)
    return frame


def _periods(server: FakeYahoo, symbol: str) -> list[pd.Timestamp]:
    return [
        pd.Timestamp(c["period1"], unit="s", tz="UTC")
        for c in server.calls
        if c["url"].endswith(symbol) and "period1" in c
    ]


def test_real_yfinance_download_shape(yahoo: FakeYahoo) -> None:
    raw = yfinance_download(
        DownloadRequest(
            "SPY",
            "1d",
            pd.Timestamp("2022-10-03", tz="UTC"),
            pd.Timestamp("2022-10-08", tz="UTC"),
            False,
        )
    )
    assert isinstance(raw.columns, pd.MultiIndex) and raw.columns.names == ["Price", "Ticker"]
    assert sorted(raw.columns.get_level_values("Price")) == [
        "Adj Close",
        "Close",
        "High",
        "Low",
        "Open",
        "Volume",
    ]
    assert raw.index.name == "Date" and raw.index.tz is None and len(raw) == 5
    bars = normalize_download(raw, "SPY", "1d")
    assert bars.index[0] == pd.Timestamp("2022-10-03", tz="UTC") and bars.index.name == "time"
    assert bars["volume"].dtype == np.float64


def test_fetch_new_symbols_stores_split_adjusted_bars_with_adj_close(yahoo: FakeYahoo, store: Path) -> None:
    results = fetch(["SPY", "QQQ"], start="2022-09-01", store=store, options=_options())
    assert [(r.symbol, r.status, r.rows) for r in results] == [
        ("SPY", "written", 56),
        ("QQQ", "written", 56),
    ]
    spy = load("SPY", store=store)
    expected = _chart_frame("SPY_1d").loc["2022-09-01":]
    np.testing.assert_array_equal(spy["close"].to_numpy(), expected["close"].to_numpy())
    np.testing.assert_array_equal(spy["adj_close"].to_numpy(), expected["adj_close"].to_numpy())
    assert (spy.index == expected.index.normalize()).all()  # Yahoo stamps the open; we stamp the date
    series = {s.symbol: s for s in info(store)}
    assert series["SPY"].adjustment == "split" and series["SPY"].source == "yfinance"


def test_fetch_with_auto_adjust_stores_total_return_bars(yahoo: FakeYahoo, store: Path) -> None:
    fetch(["SPY"], start="2022-06-01", store=store, options=_options(auto_adjust=True))
    spy = load("SPY", store=store)
    raw = _chart_frame("SPY_1d")
    assert "adj_close" not in spy.columns and info(store)[0].adjustment == "total_return"
    np.testing.assert_allclose(
        spy["open"].to_numpy(),
        raw["open"].to_numpy() * raw["adj_close"].to_numpy() / raw["close"].to_numpy(),
        rtol=1e-12,
    )
    assert spy["close"].iloc[0] < raw["close"].iloc[0]  # June bars precede the 2022-06-17 ex-dividend date


def test_fetch_resumes_and_does_not_download_stored_bars_again(yahoo: FakeYahoo, store: Path) -> None:
    fetch(["SPY"], start="2022-09-01", end="2022-10-31", store=store, options=_options())
    assert load("SPY", store=store).index[-1] == pd.Timestamp("2022-10-31", tz="UTC")
    yahoo.calls.clear()
    results = fetch(["SPY"], start="2022-09-01", store=store, options=_options())
    assert results[0].status == "written" and results[0].added == 14
    assert _periods(yahoo, "SPY") == [pd.Timestamp("2022-10-31", tz="UTC")]  # only from the last stored bar
    digest = file_digest(store)
    yahoo.calls.clear()
    again = fetch(["SPY"], start="2022-09-01", store=store, options=_options())
    assert again[0].status == "up-to-date" and file_digest(store) == digest
    assert _periods(yahoo, "SPY") == [pd.Timestamp("2022-11-18", tz="UTC")]


def test_update_fetches_only_after_the_last_bar_and_merges(yahoo: FakeYahoo, store: Path) -> None:
    fetch(["SPY", "QQQ"], start="2022-09-01", end="2022-10-14", store=store, options=_options())
    before = load("SPY", store=store)
    yahoo.calls.clear()
    results = update(store=store, options=_options())
    assert {(r.symbol, r.status, r.added) for r in results} == {
        ("SPY", "written", 25),
        ("QQQ", "written", 25),
    }
    assert _periods(yahoo, "SPY") == [pd.Timestamp("2022-10-14", tz="UTC")]
    after = load("SPY", store=store)
    assert after.index.is_unique and len(after) == 56
    pd.testing.assert_frame_equal(after.loc[: before.index[-1]], before)
    only_qqq = update(["QQQ"], store=store, options=_options())
    assert [r.symbol for r in only_qqq] == ["QQQ"] and only_qqq[0].status == "up-to-date"


def test_update_replaces_history_yahoo_re_adjusted(yahoo: FakeYahoo, store: Path) -> None:
    fetch(["SPY"], start="2022-09-01", end="2022-10-31", store=store, options=_options())
    old = load("SPY", store=store)
    # a 2:1 split on 2022-11-01 makes Yahoo halve every earlier price
    yahoo.price_scale("SPY", "1d", 0.5, before=int(pd.Timestamp("2022-11-01", tz="UTC").timestamp()))
    results = update(["SPY"], store=store, options=_options())
    assert results[0].status == "replaced" and "re-adjusted" in results[0].message
    new = load("SPY", store=store)
    assert len(new) == 56
    np.testing.assert_allclose(new.loc[old.index, "close"].to_numpy(), old["close"].to_numpy() * 0.5)


def test_refuses_to_mix_adjustments(yahoo: FakeYahoo, store: Path) -> None:
    fetch(["SPY"], start="2022-09-01", end="2022-10-31", store=store, options=_options())
    digest = file_digest(store)
    yahoo.calls.clear()
    results = fetch(["SPY"], start="2022-09-01", store=store, options=_options(auto_adjust=True))
    assert results[0].status == "failed"
    assert "Refusing to mix adjustments" in results[0].message and "--no-auto-adjust" in results[0].message
    assert file_digest(store) == digest and not _periods(yahoo, "SPY")  # refused before downloading


def test_raw_series_cannot_be_updated_from_yahoo(yahoo: FakeYahoo, store: Path, real_data: Path) -> None:
    from quantlab.data import import_csv

    import_csv(real_data / "intraday" / "SPY_1min.csv", "SPY", label="end", store=store)
    results = update(store=store, options=_options())
    assert results[0].status == "failed" and "as traded (raw)" in results[0].message


def test_rate_limits_are_retried_with_backoff(yahoo: FakeYahoo, store: Path) -> None:
    sleeps = Sleeps()
    yahoo.rate_limited_calls = 2
    results = fetch(["SPY"], start="2022-09-01", store=store, options=_options(sleeps, backoff=2.0))
    assert results[0].status == "written"
    assert sleeps == [2.0, 4.0]


def test_gives_up_after_the_retries(yahoo: FakeYahoo, store: Path) -> None:
    sleeps = Sleeps()
    yahoo.rate_limited_calls = 100
    results = fetch(["SPY"], start="2022-09-01", store=store, options=_options(sleeps, retries=2, backoff=0.5))
    assert results[0].status == "failed" and "gave up after 3 attempts" in results[0].message
    assert sleeps == [0.5, 1.0] and not store.exists()


def test_unknown_symbol_fails_alone_and_is_not_retried(yahoo: FakeYahoo, store: Path) -> None:
    sleeps = Sleeps()
    results = fetch(["SPY", "NOPE"], start="2022-09-01", store=store, options=_options(sleeps))
    status = {r.symbol: r for r in results}
    assert status["SPY"].status == "written"
    assert status["NOPE"].status == "failed" and "no data for NOPE" in status["NOPE"].message
    assert sleeps == []


def test_offline_fails_fast_without_sleeping(yahoo: FakeYahoo, store: Path) -> None:
    sleeps = Sleeps()
    yahoo.offline = True
    with pytest.raises(OfflineError, match="Cannot reach Yahoo Finance"):
        fetch(["SPY", "QQQ"], start="2022-09-01", store=store, options=_options(sleeps))
    assert sleeps == [] and len([c for c in yahoo.calls if "period1" in c]) <= 1
    assert not store.exists()


def test_probe_detects_an_unreachable_host() -> None:
    with pytest.raises(OfflineError) as err:
        probe_yahoo(host="quantlab-offline.invalid", timeout=1.0)  # .invalid never resolves (RFC 2606)
    assert "nothing was downloaded" in str(err.value)


def test_intraday_fetch_stores_utc_bar_starts(yahoo: FakeYahoo, store: Path) -> None:
    results = fetch(
        ["SPY"],
        start=pd.Timestamp("2019-02-14 14:30", tz="UTC"),
        end=pd.Timestamp("2019-02-15 21:00", tz="UTC"),
        interval="1m",
        store=store,
        options=_options(),
    )
    assert results[0].rows == 780
    bars = load("SPY", interval="1m", store=store)
    assert bars.index[0] == pd.Timestamp("2019-02-14 14:30", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2019-02-15 20:59", tz="UTC")


def test_the_download_seam_can_be_replaced(store: Path) -> None:
    """Any callable with the seam's signature works; it gets explicit auto_adjust."""
    seen: list[DownloadRequest] = []
    index = pd.DatetimeIndex(pd.bdate_range("2024-01-02", periods=3), name="Date")
    columns = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["XYZ"]],
        names=["Price", "Ticker"],
    )
    values = np.array(
        [
            [9.0, 10.0, 11.0, 9.5, 10.0, 100],
            [9.9, 11.0, 11.5, 10.5, 10.6, 200],
            [10.8, 12.0, 12.1, 11.0, 11.2, 300],
        ]
    )
    frame = pd.DataFrame(values, index=index, columns=columns)

    def downloader(request: DownloadRequest) -> pd.DataFrame:
        seen.append(request)
        return frame

    results = fetch(
        ["XYZ"],
        start="2024-01-01",
        store=store,
        options=FetchOptions(downloader=downloader, probe=None),
    )
    assert results[0].rows == 3 and seen[0].auto_adjust is False and seen[0].interval == "1d"
    assert load("XYZ", store=store)["adj_close"].tolist() == [9.0, 9.9, 10.8]


def test_cli_fetch_offline_message_and_exit_code(
    yahoo: FakeYahoo, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from quantlab.cli import cli

    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr("quantlab.data._yahoo.socket.create_connection", no_dns)
    result = CliRunner().invoke(cli, ["data", "fetch", "SPY", "--store", str(store), "--no-progress"])
    assert result.exit_code == 1
    assert "Cannot reach Yahoo Finance" in result.output and "Traceback" not in result.output
    assert not yahoo.calls and not store.exists()


def test_cli_fetch_and_update_through_replay(yahoo: FakeYahoo, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from quantlab.cli import cli

    class Connection:
        def close(self) -> None:
            pass

    monkeypatch.setattr("quantlab.data._yahoo.socket.create_connection", lambda *a, **k: Connection())
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "data",
            "fetch",
            "SPY",
            "QQQ",
            "--start",
            "2022-09-01",
            "--end",
            "2022-10-31",
            "--store",
            str(store),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "SPY 1d: written, +42 bar(s), 42 stored" in result.output
    result = runner.invoke(cli, ["data", "update", "--store", str(store), "--no-progress"])
    assert result.exit_code == 0 and "+14 bar(s), 56 stored" in result.output
    result = runner.invoke(
        cli,
        ["data", "fetch", "NOPE", "--start", "2022-09-01", "--store", str(store), "--no-progress"],
    )
    assert result.exit_code == 1 and "1 of 1 series failed" in result.output
    listing = json.loads(runner.invoke(cli, ["data", "list", "--json", "--store", str(store)]).output)
    assert {(s["symbol"], s["rows"]) for s in listing} == {("SPY", 56), ("QQQ", 56)}
    write_bars  # noqa: B018 (imported for the module's API surface)
