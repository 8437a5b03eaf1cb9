"""Open the report pages in headless Chromium: no JavaScript errors, every chart drawn.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them). Without
them the test fails with the install command: it is never skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quantlab.reports import build, compare
from tests._browser import chromium
from tests.quantlab.test_report_support import copy_runs, source_runs  # noqa: F401

pytestmark = pytest.mark.browser

COLLECT = """
return {
  ready: document.readyState,
  errors: window.__quantlabErrors || [],
  plots: Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (el) {
    var title = el.querySelector('.gtitle');
    return {
      id: el.id,
      svg: el.querySelectorAll('svg.main-svg').length,
      traces: (el._fullData || []).length,
      title: title ? title.textContent : null
    };
  })
};
"""


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    yield from chromium("1400,1000", "quantlab-chromium-")


@pytest.fixture(scope="module")
def pages(source_runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # noqa: F811
    runs = copy_runs(source_runs, tmp_path_factory.mktemp("browser") / "reports")
    out: dict[str, Any] = {kind: build(path, tearsheet=kind == "backtest") for kind, path in runs.items()}
    ids = [runs["backtest"].name, runs["optimize"].name, runs["walkforward"].name]
    out["compare"] = compare(ids, reports=runs["backtest"].parent)
    return out


def open_page(driver: Any, path: Path, n_plots: int) -> dict[str, Any]:
    """Load ``path`` and wait until ``n_plots`` plotly charts have drawn their SVG."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop entries of the previous page
    driver.get(path.resolve().as_uri())

    def drawn(d: Any) -> Any:
        state = d.execute_script(COLLECT)
        done = state["ready"] == "complete" and len(state["plots"]) >= n_plots
        return state if done and all(p["svg"] > 0 for p in state["plots"]) else False

    state = WebDriverWait(driver, 60, poll_frequency=0.25).until(drawn)
    state["severe"] = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    return state


def assert_clean(state: dict[str, Any]) -> None:
    assert not state["severe"], state["severe"]
    assert not state["errors"], state["errors"]


@pytest.mark.parametrize("kind", ["backtest", "optimize", "tpe", "walkforward"])
def test_report_page_draws_every_chart_without_errors(driver: Any, pages: dict[str, Any], kind: str) -> None:
    outcome = pages[kind]
    assert outcome.ok, outcome.failures
    state = open_page(driver, outcome.pages["report"], len(outcome.charts))
    assert_clean(state)
    plots = state["plots"]
    assert len(plots) == len(outcome.charts) >= 3
    assert [p["title"] for p in plots] == outcome.charts
    assert all(p["svg"] >= 1 and p["traces"] >= 1 for p in plots), plots


def test_compare_and_index_pages(driver: Any, pages: dict[str, Any]) -> None:
    state = open_page(driver, pages["compare"].html, 2)
    assert_clean(state)
    assert [p["title"] for p in state["plots"]] == ["Equity curves (growth of 1)", "sharpe by run"]
    assert all(p["traces"] >= 1 for p in state["plots"])

    index = pages["backtest"].index
    state = open_page(driver, index, 0)
    assert_clean(state)
    links = driver.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.getAttribute('href'))")
    for kind in ("backtest", "optimize", "tpe", "walkforward"):
        assert f"{pages[kind].run_id}/report.html" in links


def test_quantstats_tearsheet_opens_without_errors(driver: Any, pages: dict[str, Any]) -> None:
    state = open_page(driver, pages["backtest"].pages["tearsheet"], 0)
    assert_clean(state)
    n_svg = driver.execute_script("return document.querySelectorAll('svg').length")
    assert n_svg >= 10  # QuantStats' matplotlib charts, inlined as SVG
    assert "Benchmark: SPY" in driver.page_source


def test_the_error_check_catches_a_broken_page(driver: Any, tmp_path: Path) -> None:
    """The detector is not vacuous: a page that throws is reported."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>throw new Error('boom from the page');</script></body></html>")
    state = open_page(driver, page, 0)
    assert any("boom from the page" in e["message"] for e in state["severe"])


def test_price_chart_switches_symbol_with_its_trades(driver: Any, pages: dict[str, Any]) -> None:
    """The price chart's menu swaps the traces and the position shading of the chosen symbol."""
    import pandas as pd

    outcome = pages["backtest"]
    open_page(driver, outcome.pages["report"], len(outcome.charts))
    title = next(t for t in outcome.charts if t.startswith("Price and trades"))
    state = driver.execute_script(
        """
        var el = Array.from(document.querySelectorAll('.js-plotly-plot')).find(function (p) {
          return p.layout.title.text === arguments[0]; });
        var before = (el.layout.shapes || []).length;
        var button = el.layout.updatemenus[0].buttons[1];
        return Plotly.update(el, button.args[0], button.args[1]).then(function () {
          return {before: before, after: (el.layout.shapes || []).length, label: button.label,
                  visible: el._fullData.filter(function (t) { return t.visible === true; }).map(function (t) { return t.name; }),
                  errors: window.__quantlabErrors || []};
        });
        """.replace("arguments[0]", repr(title)),
    )
    trades = pd.read_csv(outcome.path / "trades.csv")
    assert state["label"] == "QQQ" and not state["errors"]
    assert state["before"] == (trades["Symbol"] == "SPY").sum()
    assert state["after"] == (trades["Symbol"] == "QQQ").sum()
    assert "QQQ close" in state["visible"] and "SPY close" not in state["visible"]
