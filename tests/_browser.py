"""Headless Debian Chromium for the browser tests (report pages and the bridge dashboard)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("QUANTLAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("QUANTLAB_CHROMEDRIVER", "/usr/bin/chromedriver")
# No background traffic: this machine's network is closed and Chromium retries many hosts at start.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium(window: str, profile_prefix: str) -> Iterator[Any]:
    """Yield a selenium driver for headless Chromium with a fresh profile; quit it afterwards.

    Fails (never skips) when Chromium is missing: .ci/run installs it, so a missing browser is a
    set-up error the test must report.
    """
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    if missing:
        pytest.fail(
            f"headless Chromium is needed for the browser test but {', '.join(missing)} is missing. "
            "Install it with `sudo apt-get install -y chromium chromium-driver` (Debian; .ci/run does this), "
            "or point QUANTLAB_CHROMIUM / QUANTLAB_CHROMEDRIVER at another build."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must not download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--window-size={window}"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp(prefix=profile_prefix)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()
