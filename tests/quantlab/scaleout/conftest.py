"""A throwaway PostgreSQL server (Debian's ``postgresql`` package, which .ci/run installs).

initdb and pg_ctl refuse to run as root, so under root (CI) the server runs as the
``postgres`` system user the package creates, in a temporary folder it owns, on a free
127.0.0.1 port; it is stopped and removed at teardown.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/quantlab`` on a fresh server."""
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql; .ci/run does it)")
    folder = tempfile.mkdtemp(prefix="quantlab-pg-")
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data = os.path.join(folder, "data")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        _as_server_user([initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user([pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(folder, "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE quantlab")
            cur.execute("CREATE ROLE reader LOGIN")  # no CREATE on quantlab's public schema (PostgreSQL 15+)
        conn.close()
        yield f"postgresql://postgres@127.0.0.1:{port}/quantlab"
    finally:
        subprocess.run(_as_server_user([pg_ctl, "-D", data, "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
