"""The dashboard is readable at desktop width (found by looking at the screenshots).

At 1280 px the page laid every table in a third of the width, so the columns that say
*why* (an alert's message, a decision's reason, who asked for a control) were cut off
inside each panel: the operator had to scroll each table sideways to read them. Here a
ledger with realistic, long rows is served by ``bridge dashboard`` and looked at in
headless Chromium: at 1280 px no table hides a column sideways, and at 390 px the page
itself still fits the phone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bridge.ledger.store import Ledger

from .test_dashboard_browser import ARTIFACTS, Dashboard, driver  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser
REF = "ql:sma_cross:SPY:20261205T012611Z:ed15f522"


def _ledger(path: Path) -> None:
    at = pd.Timestamp("2026-12-04 15:30", tz="UTC")
    led = Ledger(path)
    try:
        led.insert_order(
            {
                "order_ref": REF,
                "run_id": "r1",
                "strategy": "sma_cross",
                "symbol": "SPY",
                "bar_time": "2026-12-04T15:00:00+00:00",
                "purpose": "signal",
                "side": "BUY",
                "quantity": 25.0,
                "order_type": "MKT",
                "tif": "DAY",
                "status": "submitted",
                "reason": "signal",
                "day": "2026-12-04",
            },
            at,
        )
        led.record_decision(
            at,
            bar_time="2026-12-04T15:00:00+00:00",
            symbol="SPY",
            verdict="reject",
            rule="max_position_pct",
            reason="position would be 14.2% of equity, above the 10.0% limit (max_position_pct)",
            quantity=25.0,
            order_ref=REF,
        )
        led.record_alert(
            at,
            "limit_warning",
            "warning",
            "daily loss (fraction of start-of-day equity): 80% of the limit (0.00426 of 0.005, 85%)",
        )
        led.record_control(
            at, "stop", {"flatten": True}, "dashboard (trader@bridge-host from 127.0.0.1)", {"kill_switch": True}
        )
    finally:
        led.close()


def hidden_sideways(browser: Any) -> dict[str, int]:
    """Tables whose panel hides columns sideways: id -> hidden pixels."""
    return browser.execute_script(
        "const out = {}; for (const s of document.querySelectorAll('.scroll')) {"
        " const id = s.querySelector('tbody').id; const d = s.scrollWidth - s.clientWidth; if (d > 1) out[id] = d; } return out;"
    )


def test_no_table_hides_columns_at_desktop_width(driver: Any, tmp_path: Path) -> None:  # noqa: F811
    ledger = tmp_path / "l.sqlite"
    _ledger(ledger)
    dash = Dashboard(ledger)
    try:
        dash.wait_up()
        driver.set_window_size(1280, 900)
        driver.get(dash.url + "/")
        deadline = time.monotonic() + 20
        while driver.execute_script("return document.querySelectorAll('#alerts tr').length") == 0:
            assert time.monotonic() < deadline, "the page did not render the ledger"
            time.sleep(0.2)
        assert hidden_sideways(driver) == {}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "dashboard-desktop-tables.png"))
        driver.set_window_size(390, 844)
        time.sleep(0.5)
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        dash.stop()


def _wait_rendered(browser: Any) -> None:
    deadline = time.monotonic() + 20
    while browser.execute_script("return document.querySelectorAll('#alerts tr').length") == 0:
        assert time.monotonic() < deadline, "the page did not render the ledger"
        time.sleep(0.2)


def test_a_resume_clears_the_limit_banner_and_no_runner_is_not_trading(driver: Any, tmp_path: Path) -> None:  # noqa: F811
    """After a resume the loss limit counts afresh (its gauge reads 0%): the banner must not
    still say 80% used. And with no runner, the badge must not say "trading" in green."""
    now = pd.Timestamp.now(tz="UTC")
    ledger = tmp_path / "l.sqlite"
    led = Ledger(ledger)
    try:
        led.record_alert(
            now - pd.Timedelta(seconds=30),
            "limit_warning",
            "warning",
            "daily loss (fraction of start-of-day equity): 80% of the limit (0.0041 of 0.005, 82%)",
        )
    finally:
        led.close()
    dash = Dashboard(ledger)
    try:
        dash.wait_up()
        driver.set_window_size(1280, 900)
        driver.get(dash.url + "/")
        _wait_rendered(driver)
        assert "WARNING: daily loss" in driver.find_element("id", "banner").text  # today's warning, no resume since
        assert driver.find_element("id", "b-halt").text != "trading"  # no runner: nothing trades
        led = Ledger(ledger)
        try:
            led.record_control(
                now - pd.Timedelta(seconds=10),
                "resume",
                {"rebaseline": False},
                "cli (operator@host)",
                {"resumed": True},
            )
        finally:
            led.close()
        deadline = time.monotonic() + 10
        while driver.find_element("id", "banner").text:
            assert time.monotonic() < deadline, "the banner still shows a warning from before the resume"
            time.sleep(0.2)
    finally:
        dash.stop()
