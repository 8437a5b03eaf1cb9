"""Build the bundled sample store ``data/market.h5`` from the shared CSV files.

Usage::

    python -m quantlab.data._bundle /path/to/shared/data [--out data/market.h5]

Reproducible: the inputs are checked against their recorded SHA-256 (the values in
``shared/data/PROVENANCE.md``), the store is written from scratch in one
transaction in a fixed order with a fixed ``last_update``, and the store is
deterministic (see ``_h5``), so the same inputs and the same HDF5 library give
the same bytes. ``tests/quantlab/data/test_bundle.py`` rebuilds it and compares.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: When the shared sample was assembled (PROVENANCE.md); stored as ``last_update``.
BUNDLE_TIMESTAMP = "2026-11-21T00:00:00Z"
#: HDF5 library the committed file was built with; other versions may lay bytes out differently.
BUNDLE_HDF5_VERSION = "2.0.0"


@dataclass(frozen=True)
class BundleInput:
    """One CSV converted into the bundle."""

    relative_path: str
    symbol: str
    interval: str
    sha256: str
    label: str = "start"
    adjustment: str = "split"


INPUTS: tuple[BundleInput, ...] = (
    BundleInput(
        "daily/SPY.csv",
        "SPY",
        "1d",
        "20df69e26a33a15826c07ab0c3f4fb2e26029d7e06a4c8e217cdb2a4b73ec221",
    ),
    BundleInput(
        "daily/QQQ.csv",
        "QQQ",
        "1d",
        "3683f48fe8c51b7b018c0d09aff9ecce46796b8363c00685b12870c49bf33c26",
    ),
    BundleInput(
        "daily/IWM.csv",
        "IWM",
        "1d",
        "5277b0a5765ffbd8a26e25a94fdf0c404a2ae491e244f58580fa2a783f092927",
    ),
    BundleInput(
        "daily/DIA.csv",
        "DIA",
        "1d",
        "8075994f9e50064b740f41c229c4194f1bea38f7b2241f95937a15950f381322",
    ),
    BundleInput(
        "daily/AAPL.csv",
        "AAPL",
        "1d",
        "195bba6a5440d39d93988ae87637bccbd84858b6d2c2434ee8a9f5c3640b0664",
    ),
    BundleInput(
        "daily/MSFT.csv",
        "MSFT",
        "1d",
        "e9506764883807a2363ab7fd310d93d671d6d9a41e47d61ca8601a16b4d4956c",
    ),
    # masonblier 1-minute bars are stamped by their end (09:31..16:00): shift to bar starts.
    BundleInput(
        "intraday/SPY_1min.csv",
        "SPY",
        "1m",
        "49b0bab50a96aab45905ecf16c6d4c7c39f64b446e6cc11eb36e9c4b3057f2ef",
        label="end",
        adjustment="raw",
    ),
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(shared_data: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Convert :data:`INPUTS` from ``shared_data`` into a fresh store at ``out``.

    Raises:
        DataError: an input is missing or its hash differs from the recorded one.
    """
    from quantlab.data.csvio import read_csv, repair
    from quantlab.data.store import SeriesWrite, write_many
    from quantlab.errors import DataError

    root = Path(shared_data)
    out = Path(out)
    items = []
    for spec in INPUTS:
        path = root / spec.relative_path
        if not path.is_file():
            raise DataError(
                "Bundle input missing",
                found=str(path),
                fix="pass the shared data folder (the one holding daily/ and intraday/)",
            )
        digest = _sha256(path)
        if digest != spec.sha256:
            raise DataError(
                f"Bundle input {spec.relative_path} differs from the recorded file",
                found=f"sha256 {digest}",
                fix=f"use the file with sha256 {spec.sha256} (see PROVENANCE.md)",
            )
        bars = read_csv(path, interval=spec.interval, label=spec.label)
        frame = repair(bars)
        items.append(
            SeriesWrite(
                frame,
                spec.symbol,
                spec.interval,
                spec.adjustment,
                f"csv:{path.name}",
                "America/New_York",
                "replace",
                spec.label,
            )
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".bundle-") as scratch:
        fresh = Path(scratch) / out.name
        write_many(items, store=fresh, updated_at=BUNDLE_TIMESTAMP)
        os.replace(fresh, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quantlab.data._bundle", description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", help="folder with daily/ and intraday/ (e.g. ../shared/data)")
    parser.add_argument("--out", default=None, help="output store (default: <project>/data/market.h5)")
    args = parser.parse_args(argv)
    from quantlab.errors import QuantlabError
    from quantlab.paths import project_root

    out = Path(args.out) if args.out else project_root() / "data" / "market.h5"
    try:
        path = build(args.shared_data, out)
    except QuantlabError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size:,} bytes, sha256 {_sha256(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
