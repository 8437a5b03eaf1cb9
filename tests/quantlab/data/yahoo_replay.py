"""Replay recorded Yahoo chart responses underneath the real yfinance 1.7.

The fixtures in ``fixtures/yahoo_chart_*.json`` are Yahoo ``v8/finance/chart``
responses (the JSON yfinance parses). :class:`FakeYahoo` stands in for
``yfinance.data.YfData.get``/``cache_get`` -- the HTTP layer -- and answers each
request with the recorded bars inside ``[period1, period2)``, so the whole of
``yf.download`` (parsing, time zones, ``auto_adjust``, column layout) runs for
real, offline. It can also misbehave on purpose: be offline, rate-limit the first
N calls, not know a symbol, or re-adjust history as after a split.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_chart(name: str) -> dict[str, Any]:
    """A recorded chart response, e.g. ``load_chart("SPY_1d")``."""
    return json.loads((FIXTURES / f"yahoo_chart_{name}.json").read_text())


class FakeResponse:
    """The part of a curl_cffi response yfinance uses."""

    def __init__(self, payload: dict[str, Any], url: str) -> None:
        self._payload = payload
        self.text = json.dumps(payload)
        self.status_code = 200
        self.url = url

    def json(self) -> dict[str, Any]:
        return copy.deepcopy(self._payload)

    def raise_for_status(self) -> None:
        """Recorded responses are all HTTP 200."""


@dataclass
class FakeYahoo:
    """Serves recorded charts; counts calls; optional failure modes."""

    charts: dict[tuple[str, str], dict[str, Any]]
    offline: bool = False
    rate_limited_calls: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def price_scale(self, symbol: str, interval: str, factor: float, before: int) -> None:
        """Multiply prices (and adj close) of bars stamped before ``before`` (epoch s) by ``factor``."""
        result = self.charts[(symbol, interval)]["chart"]["result"][0]
        quote = result["indicators"]["quote"][0]
        for i, ts in enumerate(result["timestamp"]):
            if ts < before:
                for key in ("open", "high", "low", "close"):
                    quote[key][i] = quote[key][i] * factor
                if "adjclose" in result["indicators"]:
                    result["indicators"]["adjclose"][0]["adjclose"][i] *= factor

    def get(self, url: str, params: dict[str, Any] | None = None, timeout: float = 30) -> FakeResponse:
        params = dict(params or {})
        self.calls.append({"url": url, **params})
        if self.offline:
            raise ConnectionError("Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com")
        if self.rate_limited_calls > 0:
            self.rate_limited_calls -= 1
            from yfinance.exceptions import YFRateLimitError

            raise YFRateLimitError()
        symbol = url.rstrip("/").split("/")[-1]
        interval = str(params.get("interval", "1d"))
        chart = self.charts.get((symbol, interval)) or next(
            (c for (s, _), c in self.charts.items() if s == symbol), None
        )
        if chart is None:
            return FakeResponse(
                {
                    "chart": {
                        "result": None,
                        "error": {
                            "code": "Not Found",
                            "description": "No data found, symbol may be delisted",
                        },
                    }
                },
                url,
            )
        if "period1" not in params:  # time-zone probe (range=1d)
            return FakeResponse(_slice(chart, None, None, last_only=True), url)
        return FakeResponse(_slice(chart, params.get("period1"), params.get("period2")), url)


def _slice(chart: dict[str, Any], start: int | None, end: int | None, last_only: bool = False) -> dict[str, Any]:
    out = copy.deepcopy(chart)
    result = out["chart"]["result"][0]
    stamps = result["timestamp"]
    keep = [i for i, ts in enumerate(stamps) if (start is None or ts >= start) and (end is None or ts < end)]
    if last_only:
        keep = keep[-1:]
    result["timestamp"] = [stamps[i] for i in keep]
    quote = result["indicators"]["quote"][0]
    for key in list(quote):
        quote[key] = [quote[key][i] for i in keep]
    if "adjclose" in result["indicators"]:
        adj = result["indicators"]["adjclose"][0]["adjclose"]
        result["indicators"]["adjclose"][0]["adjclose"] = [adj[i] for i in keep]
    if "tradingPeriods" in result["meta"] and keep:
        first, last = result["timestamp"][0], result["timestamp"][-1]
        periods = [p for p in result["meta"]["tradingPeriods"] if p[0]["end"] > first and p[0]["start"] <= last]
        result["meta"]["tradingPeriods"] = periods
    if not keep:
        result.pop("timestamp")
        result["indicators"]["quote"] = [{}]
        result.pop("events", None)
    return out


def install(monkeypatch: Any, server: FakeYahoo, cache_dir: Path) -> None:
    """Route yfinance's HTTP layer to ``server`` (and its caches to ``cache_dir``)."""
    import yfinance as yf
    import yfinance.data as yfdata

    yf.set_tz_cache_location(str(cache_dir))

    def fake_get(self: Any, url: str, params: dict[str, Any] | None = None, timeout: float = 30) -> FakeResponse:
        return server.get(url, params, timeout)

    monkeypatch.setattr(yfdata.YfData, "get", fake_get)
    monkeypatch.setattr(yfdata.YfData, "cache_get", fake_get)
