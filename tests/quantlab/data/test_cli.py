"""``quantlab data`` commands through click's CliRunner and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from quantlab.cli import cli

from .conftest import REPO


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["data", *args])
    return result.exit_code, result.output


def test_list_shows_symbol_interval_range_rows_adjustment(bundled_copy: Path) -> None:
    code, out = _run("list", "--store", str(bundled_copy))
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == [
        "symbol",
        "interval",
        "first",
        "last",
        "rows",
        "adjustment",
        "source",
    ]
    assert "SPY      1d       2000-01-03" in out and "5759  split" in out
    assert "SPY      1m       2019-02-11 14:30 UTC 2019-02-15 20:59 UTC     1950  raw" in out


def test_store_option_on_the_group_works_too(bundled_copy: Path) -> None:
    code, out = _run("--store", str(bundled_copy), "list", "--json")
    assert code == 0 and len(json.loads(out)) == 7


def test_import_then_list_then_check(tmp_path: Path, real_data: Path) -> None:
    store = str(tmp_path / "m.h5")
    code, out = _run(
        "import",
        str(real_data / "intraday" / "QQQ_1min.csv"),
        "--symbol",
        "qqq",
        "--label",
        "end",
        "--store",
        store,
    )
    assert code == 0 and out.strip() == "QQQ 1m: created, +1948 bar(s), 0 rewritten, 1948 stored"
    code, out = _run("check", "--store", store)
    assert code == 0  # warnings only
    assert "missing_bars" in out and "2019-02-14 14:32, 2019-02-14 14:37" in out
    code, _ = _run("check", "--strict", "--store", store)
    assert code == 1


def test_check_file_json_and_exit_code(real_data: Path) -> None:
    code, out = _run("check", "--file", str(real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv"), "--json")
    assert code == 1
    payload = json.loads(out)
    assert payload["exit_code"] == 1 and payload["errors"] >= 5
    findings = {f["code"]: f for f in payload["reports"][0]["findings"]}
    assert findings["backwards"]["count"] == 18 and findings["duplicates"]["count"] == 5075
    assert findings["zero_volume"]["severity"] == "warning" and findings["zero_volume"]["count"] == 37
    assert findings["empty_rows"]["examples"] == ["2019-12-20 09:30 (line 1940)"]


def test_check_daily_file_is_clean(real_data: Path) -> None:
    code, out = _run("check", "--file", str(real_data / "daily" / "JPM.csv"))
    assert code == 0 and "clean - 0 error(s), 0 warning(s)" in out
    assert "2009-01-21 (+25.1%)" in out  # a real event, reported as info


def test_bundled_store_check_passes(bundled_copy: Path) -> None:
    code, out = _run("check", "--store", str(bundled_copy))
    assert code == 0 and "7 series checked: 0 error finding(s), 1 warning finding(s)" in out


def test_import_refusal_points_to_check_file(real_data: Path, tmp_path: Path) -> None:
    path = real_data / "intraday" / "SPY_1min_yf_raw_2019-12.csv"
    code, out = _run("import", str(path), "--symbol", "SPY", "--store", str(tmp_path / "m.h5"))
    assert code == 1 and f"quantlab data check --file {path}" in out
    code, out = _run(
        "import",
        str(path),
        "--symbol",
        "SPY",
        "--sort",
        "--dedupe",
        "first",
        "--drop-empty",
        "--store",
        str(tmp_path / "m.h5"),
    )
    assert code == 0 and "+8360 bar(s)" in out


def test_update_of_a_raw_series_fails_with_a_reason(bundled_copy: Path) -> None:
    code, out = _run("update", "SPY", "--interval", "1m", "--store", str(bundled_copy), "--no-progress")
    assert code == 1 and "cannot be updated from Yahoo" in out


def test_subprocess_uses_the_bundled_store_by_default() -> None:
    env = {k: v for k, v in os.environ.items() if k != "QUANTLAB_STORE"}
    proc = subprocess.run(
        [sys.executable, "-m", "quantlab", "data", "list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"store: {REPO / 'data' / 'market.h5'}" in proc.stdout
    assert proc.stdout.count("\n") == 9  # store line, header, 7 series


def test_subprocess_error_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "quantlab", "data", "check", "--store", str(tmp_path / "none.h5")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "No market-data store" in proc.stderr and "Traceback" not in proc.stderr


def test_importing_quantlab_data_stays_cheap() -> None:
    code = "import sys, quantlab.data; print(sorted(m for m in ('yfinance', 'exchange_calendars', 'tqdm') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]"
