"""The dashboard in headless Chromium against a bridge running on the fake gateway.

The runner runs in this test's thread (``BridgeHarness``: real ib_async client, fake
gateway over 127.0.0.1); ``bridge dashboard`` runs as its own process reading the ledger,
as in production. While the browser waits, the test keeps stepping the runner, so the
page sees what a live bridge would publish. Screenshots (desktop and phone width) go to
``tmp/artifacts/dashboard/`` in the repository (the path is printed).

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them): the test
fails with the install command without them, it is never skipped.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.ledger.store import iso
from tests._browser import chromium
from tests.fakegw import FakeGateway
from tests.fakegw.policy import FillPolicy

from ._harness import BridgeHarness

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tmp" / "artifacts" / "dashboard"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    out.update(PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")))
    return out


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    yield from chromium("1280,900", "bridge-dashboard-chromium-")


class Dashboard:
    """``bridge dashboard`` as a subprocess on a free port."""

    def __init__(self, ledger: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "dashboard", "--ledger", str(ledger), "--port", str(self.port)],
            env=env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.token_file = ledger.with_name(ledger.name + ".dashboard-token")

    def wait_up(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.proc.stderr.read() if self.proc.stderr else "dashboard exited")
            try:
                with urllib.request.urlopen(self.url + "/api/state", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError("dashboard did not come up")

    def stop(self) -> str:
        self.proc.terminate()
        _, err = self.proc.communicate(timeout=20)
        return err


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def pump_until(h: BridgeHarness, predicate: Callable[[], object], timeout: float = 10.0) -> float:
    """Step the runner until ``predicate`` holds; returns the seconds it took."""
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        h.step(0.02)
    return time.monotonic() - t0


def hold(h: BridgeHarness, suffix: str, qty: float) -> str:
    """An order held for approval, as the runner records one (an exit, so the gate passes it)."""
    ref = f"{h.runner.ctx.new_ref('SPY', h.clock.now(), 'sig')}{suffix}"
    h.ledger.insert_order(
        {
            "order_ref": ref,
            "run_id": h.runner.run_id,
            "strategy": h.runner.skey,
            "symbol": "SPY",
            "bar_time": iso(h.frame.index[h.k - 1]),
            "purpose": "signal",
            "side": "SELL",
            "quantity": qty,
            "order_type": "MKT",
            "tif": "DAY",
            "status": "needs_approval",
            "reason": "order notional above approval_threshold: held, not sent",
            "day": h.runner.day(),
        },
        h.clock.now(),
    )
    return ref


def text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    els = driver.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def count(driver: Any, css: str) -> int:
    from selenium.webdriver.common.by import By

    return len(driver.find_elements(By.CSS_SELECTOR, css))


def click(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, css).click()


def test_dashboard_in_chromium(harness: Callable[..., BridgeHarness], gw: FakeGateway, driver: Any) -> None:
    gw.set_default_policy(FillPolicy.rest())  # sent orders rest: the test fills them at the gateway
    h = harness(seed=60, risk={"market_hours": False, "daily_loss_limit_pct": 0.005, "approval_threshold": 5_000.0})
    h.start()
    assert h.until(lambda: bool(h.orders()))
    [entry] = h.orders()
    assert entry["status"] == "needs_approval" and gw.orders_received() == []  # the ~$10k entry is held
    h.runner.ctx.heartbeat(force=True)
    dash = Dashboard(h.ledger.path)
    try:
        dash.wait_up()
        token = dash.token_file.read_text().strip()
        assert oct(dash.token_file.stat().st_mode & 0o777) == "0o600" and len(token) >= 32
        driver.set_window_size(1280, 900)
        driver.get_log("browser")
        driver.get(dash.url + "/")
        pump_until(
            h,
            lambda: text(driver, "#b-runner").startswith("runner ready") and count(driver, "#held tr[data-ref]") == 1,
            20,
        )
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert severe == [], severe
        assert driver.execute_script("return typeof Plotly") == "object"  # served offline, from the plotly package
        assert count(driver, "#fills tr[data-exec]") == 0
        assert "min" in text(driver, f"#held tr[data-ref='{entry['order_ref']}'] td.left")  # time left to approve

        # approve the held entry (token + confirmation): the running bridge re-checks and sends it
        driver.find_element("id", "token").send_keys(token)
        click(driver, f"button.approve[data-ref='{entry['order_ref']}']")
        assert driver.find_element("id", "confirm").is_displayed() and entry["order_ref"] in text(
            driver, "#confirm-text"
        )
        for _ in range(10):
            h.step(0.02)
        assert h.ledger.order(entry["order_ref"])["status"] == "needs_approval"  # nothing before the confirmation
        click(driver, "#confirm-yes")
        pump_until(h, lambda: [o.order_ref for o in gw.orders_received()] == [entry["order_ref"]], 15)
        pump_until(h, lambda: "HTTP 200" in text(driver, "#result"), 10)

        # a fill at the gateway appears on the page within 5 s
        t0 = time.monotonic()
        gw.fill_order(entry["order_ref"])
        pump_until(h, lambda: count(driver, "#fills tr[data-exec]") == 1, 10)
        assert time.monotonic() - t0 < 5.0
        qty = gw.position("SPY")[0]
        assert qty > 0
        pump_until(
            h, lambda: text(driver, "#positions tr[data-symbol='SPY'] td.upl") != "", 5
        )  # the runner's next heartbeat
        gw.set_default_policy(FillPolicy.auto())

        # a price move updates unrealised P&L and the loss gauge; 80% of the loss limit warns
        pump_until(
            h,
            lambda: driver.execute_script(
                "var e = document.getElementById('limit-daily_loss_pct'); return e && e.dataset.fraction"
            ),
            10,
        )
        before = float(driver.execute_script("return document.getElementById('limit-daily_loss_pct').dataset.fraction"))
        o = float(h.frame["open"].iloc[h.k])
        low = o * (1 - 0.043)  # ~4.3% on a ~10% position: ~86% of the 0.5% daily loss limit
        gw.push_bar("SPY", {"time": h._stamp(h.k), "open": o, "high": o, "low": low, "close": low})
        pump_until(h, lambda: "WARNING" in text(driver, "#banner"), 10)
        frac = float(driver.execute_script("return document.getElementById('limit-daily_loss_pct').dataset.fraction"))
        assert 0.8 <= frac < 1.0 and frac > before
        assert text(driver, "#positions tr[data-symbol='SPY'] td.upl").startswith("-")
        assert "daily loss" in text(driver, "#banner") and not h.ledger.risk_state().kill_switch
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "dashboard-desktop.png"))

        # reject acts on a held order: it is voided and never sent
        drop = hold(h, "b", 1.0)
        pump_until(h, lambda: count(driver, f"#held tr[data-ref='{drop}']") == 1, 10)
        click(driver, f"button.reject[data-ref='{drop}']")
        click(driver, "#confirm-yes")
        pump_until(h, lambda: h.ledger.order(drop)["status"] == "void", 15)
        pump_until(h, lambda: count(driver, "#held tr[data-ref]") == 0, 10)
        assert [o.order_ref for o in gw.orders_received()] == [entry["order_ref"]]  # the rejected one never left
        controls = h.ledger.control_log()
        assert [c["command"] for c in controls] == ["reject", "approve"] and all(
            "dashboard" in c["requested_by"] for c in controls
        )

        # without the token (or with a wrong one) every control is refused and nothing happens
        csrf = driver.get_cookie("bridge_csrf")["value"]
        same = {"Origin": dash.url, "X-CSRF-Token": csrf, "Cookie": f"bridge_csrf={csrf}"}
        n_controls = len(h.ledger.control_log())
        for action in ("stop", "resume", "approve", "reject"):
            code, body = post(
                f"{dash.url}/api/control/{action}", {"confirm": action, "order_ref": drop, "flatten": True}, same
            )
            assert code == 401 and "token is missing" in body["error"], (action, code, body)
            code, body = post(
                f"{dash.url}/api/control/{action}",
                {"confirm": action, "order_ref": drop, "flatten": True},
                {**same, "Authorization": "Bearer wrong-token"},
            )
            assert code == 403 and "token is wrong" in body["error"]
        # a cross-site POST is refused even with the right token and CSRF pair
        code, body = post(
            f"{dash.url}/api/control/stop",
            {"confirm": "stop", "flatten": True},
            {
                **same,
                "Origin": "http://evil.example",
                "Sec-Fetch-Site": "cross-site",
                "Authorization": f"Bearer {token}",
            },
        )
        assert code == 403 and "cross-site" in body["error"]
        code, body = post(
            f"{dash.url}/api/control/stop",
            {"confirm": "stop"},
            {"Origin": dash.url, "Authorization": f"Bearer {token}"},
        )
        assert code == 403 and "CSRF" in body["error"]
        code, body = post(
            f"{dash.url}/api/control/stop", {"flatten": True}, {**same, "Authorization": f"Bearer {token}"}
        )
        assert code == 400 and "not confirmed" in body["error"]
        code, body = post(
            f"{dash.url}/api/control/approve",
            {"confirm": "approve", "order_ref": "nope"},
            {**same, "Authorization": f"Bearer {token}"},
        )
        assert code == 404 and "unknown order id" in body["error"]
        code, body = post(
            f"{dash.url}/api/control/approve",
            {"confirm": "approve", "order_ref": drop},
            {**same, "Authorization": f"Bearer {token}"},
        )
        assert code == 409 and "not held" in body["error"]
        for _ in range(10):
            h.step(0.02)
        assert len(h.ledger.control_log()) == n_controls and not h.ledger.risk_state().kill_switch
        assert gw.position("SPY")[0] == qty

        # the emergency stop button (token + confirmation) flattens at the gateway
        click(driver, "#btn-stop")
        assert "FLATTEN" in text(driver, "#confirm-text")
        click(driver, "#confirm-yes")
        pump_until(h, lambda: gw.position("SPY")[0] == 0.0 and h.settled(), 20)
        pump_until(
            h,
            lambda: (
                "LATCHED" in text(driver, "#b-kill")
                and "HTTP 200" in text(driver, "#result")
                and count(driver, "#positions tr[data-symbol]") == 0
            ),
            10,
        )
        stop = h.ledger.control_log(1)[0]
        assert (
            stop["command"] == "stop"
            and "dashboard" in stop["requested_by"]
            and stop["processed_by"].startswith("runner")
        )

        driver.save_screenshot(str(ARTIFACTS / "dashboard-desktop-stopped.png"))

        # resume after the latched kill switch (token + confirmation)
        click(driver, "#btn-resume")
        assert h.ledger.risk_state().kill_switch  # not before the confirmation
        click(driver, "#confirm-yes")
        pump_until(
            h, lambda: not h.ledger.risk_state().kill_switch and "kill switch clear" in text(driver, "#b-kill"), 20
        )
        resume = h.ledger.control_log(1)[0]
        assert resume["command"] == "resume" and "dashboard" in resume["requested_by"]
        driver.set_window_size(390, 844)
        pump_until(h, lambda: count(driver, "#fills tr[data-exec]") >= 2, 10)
        fits = "return document.documentElement.scrollWidth <= window.innerWidth"
        try:
            pump_until(h, lambda: driver.execute_script(fits), 5)
        except AssertionError:
            pass  # reported with the culprits below
        width = driver.execute_script("return document.documentElement.scrollWidth")
        wide = driver.execute_script(
            "var w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *'))"
            ".filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll')).slice(0, 5)"
            ".map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert width <= driver.execute_script("return window.innerWidth"), (
            f"the page scrolls sideways on a phone ({width}px): {wide}"
        )
        driver.save_screenshot(str(ARTIFACTS / "dashboard-phone.png"))
        print(f"dashboard screenshots: {ARTIFACTS}")
    finally:
        err = dash.stop()
    assert token not in err  # the token is never logged


def test_dashboard_port_in_use_and_missing_ledger(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        ledger = tmp_path / "l.sqlite"
        from bridge.ledger.store import Ledger

        Ledger(ledger).close()
        out = subprocess.run(
            [sys.executable, "-m", "bridge", "dashboard", "--ledger", str(ledger), "--port", str(port)],
            capture_output=True,
            text=True,
            env=env(),
            cwd=ROOT,
            timeout=60,
        )
    assert out.returncode == 2 and "dashboard port is in use" in out.stderr and "Traceback" not in out.stderr
    assert not ledger.with_name(ledger.name + ".dashboard-token").exists()  # nothing created
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridge",
            "dashboard",
            "--ledger",
            str(tmp_path / "none.sqlite"),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        env=env(),
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 2 and "ledger not found" in out.stderr
