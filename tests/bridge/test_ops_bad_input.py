"""Bad input an operator meets that the first issue-13 tests did not try (found by hand).

A host that cannot be bound is not a port in use; a restore into a folder that does not
exist is a clear error, not a traceback, and creates nothing.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bridge.errors import ControlError
from bridge.ledger.store import Ledger
from bridge.ops.dashboard.server import check_port_free

from .test_ops import cli


def test_a_host_that_cannot_be_bound_is_not_called_a_port_in_use() -> None:
    with pytest.raises(ControlError) as err:
        check_port_free("10.255.255.254", 8765)  # not an address of this machine
    assert "cannot listen on the dashboard host" in err.value.render() and "in use" not in err.value.what
    with pytest.raises(ControlError) as err:
        check_port_free("no-such-host.invalid", 8765)
    assert "cannot listen on the dashboard host" in err.value.render()


def test_a_port_in_use_is_still_called_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ControlError) as err:
            check_port_free("127.0.0.1", s.getsockname()[1])
    assert err.value.what == "the dashboard port is in use"


def test_restore_into_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    backup = tmp_path / "b.sqlite"
    Ledger(backup).close()
    target = tmp_path / "nowhere" / "l.sqlite"
    out = cli("restore", str(backup), "--ledger", str(target))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "folder" in out.stderr and str(target.parent) in out.stderr
    assert not target.parent.exists()


def test_restore_of_the_ledger_onto_itself_is_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "l.sqlite"
    Ledger(ledger).close()
    out = cli("restore", str(ledger), "--ledger", str(ledger))
    assert out.returncode == 2 and "is the current ledger" in out.stderr, out.stderr
    assert not list(tmp_path.glob("*before-restore*"))


def test_dashboard_http_errors_say_why(tmp_path: Path) -> None:
    """/health with the ledger gone is a 503 that says so (not a bare 500); a control without an
    order id is the client's mistake (400); the Bearer scheme is case-insensitive (RFC 7235)."""
    import json
    import urllib.error
    import urllib.request

    from .test_dashboard_browser import Dashboard, post

    ledger = tmp_path / "l.sqlite"
    Ledger(ledger).close()
    dash = Dashboard(ledger)
    try:
        dash.wait_up()
        token = dash.token_file.read_text().strip()
        same = {"Origin": dash.url, "X-CSRF-Token": "c", "Cookie": "bridge_csrf=c"}
        code, body = post(
            f"{dash.url}/api/control/approve", {"confirm": "approve"}, {**same, "Authorization": f"Bearer {token}"}
        )
        assert code == 400 and "no order id given" in body["error"], (code, body)
        code, body = post(
            f"{dash.url}/api/control/approve",
            {"confirm": "approve", "order_ref": "nope"},
            {**same, "Authorization": f"bearer {token}"},
        )
        assert code == 404 and "unknown order id" in body["error"], (code, body)
        for p in tmp_path.glob("l.sqlite*"):
            if not p.name.endswith("dashboard-token"):
                p.unlink()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(dash.url + "/health", timeout=20)
        assert err.value.code == 503
        health = json.loads(err.value.read())
        assert health["ok"] is False and "ledger" in health["error"], health
    finally:
        dash.stop()


def test_an_unusable_token_file_is_a_clear_error(tmp_path: Path) -> None:
    from bridge.ops.dashboard.security import load_or_create_token

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    for path in (tmp_path, blocker / "token"):  # a folder; a path under a file
        with pytest.raises(ControlError) as err:
            load_or_create_token(path)
        assert "token file" in err.value.what and str(path) in err.value.render()
