"""The on-disk layout of the market store (h5py), and nothing else.

Layout::

    /                       attrs: format = "quantlab-market/1"
    /<SYMBOL>/<interval>/   one group per symbol and interval, attrs below
        time                int64   UTC nanoseconds of each bar's start, strictly increasing
        open high low close float64
        volume              float64
        adj_close           float64 (only when the source has it)

Series attributes (written in this fixed order): ``symbol``, ``interval``,
``adjustment`` (raw / split / total_return), ``source``, ``source_label`` (whether
the source stamped bars by their start or end; stored stamps are always starts),
``timezone`` (the exchange time zone the bars were recorded in; the stored stamps
are always UTC) and ``last_update`` (ISO-8601 UTC).

Every dataset is 1-D, chunked (:data:`CHUNK_ROWS` rows = 64 KiB), resizable
(``maxshape=(None,)``) and compressed with **gzip (deflate) level 4**; ``time``
and ``volume`` also go through the **shuffle** filter, prices do not. Why:

* gzip is built into every HDF5 library, so h5py, PyTables, MATLAB, R and HDFView
  read the file without plugins; LZF is h5py-only and Blosc/Zstd need plugins.
* Shuffle regroups the bytes of each 8-byte value. That makes the int64 times
  (constant steps) 7x smaller and volumes ~20% smaller, but it *hurts* prices
  quoted in cents (271.34...): their float64 bit patterns repeat whole-value
  byte sequences that deflate finds only unshuffled (2x smaller without shuffle;
  full-precision Yahoo split-adjusted floats are ~10% larger without it).
* Level 4: level 9 saves only ~5% more and writes slower; level 1 is ~9% larger.

Figures are in ``benchmarks/bench_data.py`` (a year of 1-minute bars: 4.7 MB of
arrays, 1.2 MB on disk with this choice vs 2.0 MB with shuffle on every column;
loaded in under 20 ms).

Determinism: datasets and groups are created with modification-time tracking
off, the root group uses version-1 object headers (which carry no time stamp),
attributes are written in a fixed order, and free space is tracked persistently
(``fs_persist``) so space released by rewritten chunks is reused instead of
leaking. The same sequence of writes with the same ``last_update`` therefore gives
the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import h5py
import numpy as np

from quantlab.data._schema import ALL_FIELDS, FIELDS
from quantlab.errors import StoreError

FORMAT = "quantlab-market/1"
CHUNK_ROWS = 8192
COMPRESSION: dict[str, object] = {"compression": "gzip", "compression_opts": 4}
SHUFFLED = {"time", "volume"}


def filters_for(column: str) -> dict[str, object]:
    """HDF5 filter settings of one column (see the module docstring for the choice)."""
    if not COMPRESSION:
        return {}
    return {**COMPRESSION, "shuffle": column in SHUFFLED}


ATTR_ORDER = (
    "symbol",
    "interval",
    "adjustment",
    "source",
    "source_label",
    "timezone",
    "last_update",
)
_REBUILD_HINT = "restore it from a backup or git (git checkout data/market.h5), or rebuild it with `python -m quantlab.data._bundle`"


def create_file(path: Path) -> h5py.File:
    """Create an empty store (truncating ``path``) with deterministic settings."""
    f = h5py.File(path, "w", fs_strategy="fsm", fs_persist=True, track_order=False)
    f.attrs["format"] = FORMAT
    return f


def check_readable(path: Path) -> None:
    """Raise a :class:`StoreError` unless ``path`` is an existing quantlab store."""
    if not path.exists():
        raise StoreError(
            f"No market-data store at {path}",
            fix="import or fetch data first (quantlab data import FILE --symbol X, quantlab data fetch SPY), "
            "or point --store / QUANTLAB_STORE at an existing store",
        )
    if path.is_dir():
        raise StoreError(
            "The store path is a folder, not a file",
            found=str(path),
            fix="pass the .h5 file itself",
        )
    if not h5py.is_hdf5(path):
        with open(path, "rb") as fh:
            head = fh.read(16)
        raise StoreError(
            f"{path} is not an HDF5 file",
            found=f"{path.stat().st_size} bytes starting {head!r}",
            fix=f"point --store at a quantlab store, or {_REBUILD_HINT}",
        )


def open_read(path: Path) -> h5py.File:
    """Open an existing store read-only, turning every failure into a :class:`StoreError`."""
    check_readable(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise StoreError(
            f"Cannot open the store {path} (corrupt or truncated)",
            found=str(err),
            fix=_REBUILD_HINT,
        ) from err
    if f.attrs.get("format") != FORMAT:
        found = f.attrs.get("format")
        f.close()
        raise StoreError(
            f"{path} is an HDF5 file but not a quantlab market store",
            found=f"format attribute {found!r}",
            fix="point --store at a store written by quantlab",
        )
    return f


def open_write(path: Path) -> h5py.File:
    """Open a store (a private copy, see ``_txn``) for appending."""
    try:
        f = h5py.File(path, "r+")
    except OSError as err:
        raise StoreError(f"Cannot open the store {path} for writing", found=str(err), fix=_REBUILD_HINT) from err
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise StoreError(
            f"{path} is not a quantlab market store",
            fix="point --store at a store written by quantlab",
        )
    return f


#: What h5py raises when the inside of a file is damaged (headers, B-trees, chunks).
DAMAGE_ERRORS = (OSError, KeyError, ValueError, RuntimeError)
DAMAGE_FIX = (
    "restore the store from a backup or git (git checkout data/market.h5) or rebuild it "
    "(python -m quantlab.data._bundle); `quantlab data list` shows which series are still readable"
)


def _reason(err: BaseException) -> str:
    return str(err).strip().strip("'\"") or type(err).__name__


def _symbols(f: h5py.File) -> list[str]:
    """The root's links, sorted; a root too damaged to list makes the whole store unreadable."""
    try:
        return sorted(f.keys())
    except DAMAGE_ERRORS as err:
        raise StoreError(
            f"Cannot list the series in {f.filename}: the store's root group is damaged",
            found=_reason(err),
            fix=_REBUILD_HINT,
        ) from err


def series_keys(f: h5py.File) -> Iterator[tuple[str, str]]:
    """Yield ``(symbol, interval)`` for every series whose group can be listed, sorted.

    Cheap (link tables only). A symbol group too damaged to list is skipped and a
    damaged interval group is kept; :func:`series_entries` tells which are damaged.
    """
    for symbol in _symbols(f):
        try:
            node = f[symbol]
            if not isinstance(node, h5py.Group):
                continue
            names = sorted(node.keys())
        except DAMAGE_ERRORS:
            continue
        for interval in names:
            try:
                group = node[interval]
                if not isinstance(group, h5py.Group) or "time" not in group:
                    continue
            except DAMAGE_ERRORS:
                pass
            yield symbol, interval


def probe(group: h5py.Group) -> None:
    """Open what ``data list`` shows: attributes, every dataset header, first and last time.

    Damage inside price chunks is found only when the rows are read (``load``,
    ``data check``); reading every chunk here would make listing cost a full load.
    """
    read_attrs(group)
    for name in ("time", *stored_fields(group)):
        _ = group[name].shape
    times = group["time"]
    if times.shape[0]:
        _ = (times[0], times[times.shape[0] - 1])


def damage_of(f: h5py.File, symbol: str, interval: str) -> str | None:
    """``None`` if the series does not exist, ``""`` if it opens, else h5py's reason."""
    try:
        if symbol not in f or interval not in f[symbol]:
            return None
        probe(f[symbol][interval])
    except DAMAGE_ERRORS as err:
        return _reason(err)
    return ""


def series_entries(f: h5py.File) -> list[tuple[str, str, str]]:
    """Every series as ``(symbol, interval, damage)``, sorted; ``damage`` is ``""`` when it opens.

    A symbol group that cannot even be listed appears once, with interval ``"?"``.
    """
    out: list[tuple[str, str, str]] = []
    for symbol in _symbols(f):
        try:
            node = f[symbol]
            if not isinstance(node, h5py.Group):
                continue
            names = sorted(node.keys())
        except DAMAGE_ERRORS as err:
            out.append((symbol, "?", _reason(err)))
            continue
        for interval in names:
            try:
                group = node[interval]
                if not isinstance(group, h5py.Group) or "time" not in group:
                    continue
                probe(group)
            except DAMAGE_ERRORS as err:
                out.append((symbol, interval, _reason(err)))
                continue
            out.append((symbol, interval, ""))
    return out


def _group(parent: h5py.Group, name: str) -> h5py.Group:
    if name in parent:
        return parent[name]
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl)
    return parent[name]


def create_series(
    f: h5py.File,
    symbol: str,
    interval: str,
    times: np.ndarray,
    columns: Mapping[str, np.ndarray],
    attrs: Mapping[str, str],
) -> h5py.Group:
    """Create ``/<symbol>/<interval>`` with resizable chunked datasets and attributes."""
    if symbol in f and interval in f[symbol]:
        del f[symbol][interval]
    group = _group(_group(f, symbol), interval)
    group.create_dataset(
        "time",
        data=times.astype(np.int64),
        maxshape=(None,),
        chunks=(CHUNK_ROWS,),
        track_times=False,
        **filters_for("time"),
    )
    for field in ALL_FIELDS:
        if field in columns:
            group.create_dataset(
                field,
                data=np.asarray(columns[field], dtype=np.float64),
                maxshape=(None,),
                chunks=(CHUNK_ROWS,),
                track_times=False,
                **filters_for(field),
            )
    write_attrs(group, attrs)
    return group


def write_attrs(group: h5py.Group, attrs: Mapping[str, str]) -> None:
    """Write the series attributes in :data:`ATTR_ORDER` (unknown keys are refused)."""
    unknown = set(attrs) - set(ATTR_ORDER)
    if unknown:
        raise ValueError(f"unknown series attributes {sorted(unknown)}")
    for key in ATTR_ORDER:
        if key in attrs:
            group.attrs[key] = str(attrs[key])


def read_attrs(group: h5py.Group) -> dict[str, str]:
    """The series attributes as plain strings."""
    out = {}
    for key in ATTR_ORDER:
        value = group.attrs.get(key, "")
        out[key] = value.decode() if isinstance(value, bytes) else str(value)
    return out


def stored_fields(group: h5py.Group) -> list[str]:
    """The value columns of a series, in canonical order."""
    return [f for f in ALL_FIELDS if f in group]


def write_from(group: h5py.Group, position: int, times: np.ndarray, columns: Mapping[str, np.ndarray]) -> None:
    """Overwrite rows ``position..`` with new rows (resizing); rows before are untouched.

    With ``position`` equal to the current length this is a pure append: HDF5 writes
    only the chunks that hold new rows (the last partial chunk and new ones).
    """
    fields = stored_fields(group)
    if set(fields) != set(columns):
        raise StoreError(
            f"Columns differ from the stored series {group.name}",
            found=f"stored {fields}, new {sorted(columns)}",
            fix="write bars with the same columns (adj_close present or absent in both), or replace the series",
        )
    new_len = position + len(times)
    for name, values in (("time", times), *((f, columns[f]) for f in fields)):
        ds = group[name]
        ds.resize((new_len,))
        if len(times):
            ds[position:new_len] = values


def read_times(group: h5py.Group) -> np.ndarray:
    """The whole int64 time column (8 bytes per bar: cheap even for years of minutes)."""
    return np.asarray(group["time"][...], dtype=np.int64)


def read_rows(
    group: h5py.Group, lo: int, hi: int, fields: tuple[str, ...] | list[str] = FIELDS
) -> dict[str, np.ndarray]:
    """Rows ``lo:hi`` of the given value columns."""
    return {f: group[f][lo:hi] for f in fields if f in group}
