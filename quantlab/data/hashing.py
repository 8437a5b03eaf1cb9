"""A stable content hash of a bar frame, for run records and cache keys."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from quantlab.data._schema import ALL_FIELDS, as_utc_ns

_VERSION = b"quantlab-frame-hash/1\n"


def _column_order(frame: pd.DataFrame) -> list[object]:
    canonical = [c for c in ALL_FIELDS if c in frame.columns]
    others = sorted((c for c in frame.columns if c not in canonical), key=str)
    return [*canonical, *others]


def frame_hash(frame: pd.DataFrame) -> str:
    """SHA-256 (hex) over the index and the float64 values, in a fixed column order.

    Hashed, in order: a version tag; the index as int64 UTC nanoseconds
    (naive indexes are taken as UTC; a non-datetime index hashes its int64 values);
    then for each column (canonical fields ``open high low close volume adj_close``
    first, any others sorted by name) its name and its values as little-endian
    float64, with every NaN written as the same bit pattern. The result does not
    depend on column order in the frame, memory layout or pandas version.

    Raises:
        TypeError: a column cannot be converted to float64.
    """
    digest = hashlib.sha256(_VERSION)
    index = frame.index
    if isinstance(index, pd.DatetimeIndex):
        stamps = as_utc_ns(index).asi8
    else:
        stamps = np.asarray(index, dtype=np.int64)
    digest.update(f"rows={len(frame)}\n".encode())
    digest.update(np.ascontiguousarray(stamps, dtype="<i8").tobytes())
    for column in _column_order(frame):
        values = np.array(frame[column].to_numpy(dtype=np.float64, na_value=np.nan), dtype="<f8")
        values[np.isnan(values)] = np.nan
        digest.update(f"\ncolumn={column}\n".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()
