"""Walk-forward folds by calendar time: rolling or anchored, with an embargo.

Test windows are contiguous and do not overlap: fold k tests
``[t0 + train + embargo + k*test, ... + test)``. Its training window ends ``embargo``
before the test starts and spans ``train`` back (rolling) or reaches back to the first
bar (anchored, i.e. expanding). The last fold may test a shorter window when the data
ends; it is marked ``partial`` (and dropped if it holds fewer than two bars). A full test
window with fewer than two bars is an error: it cannot be scored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from quantlab.errors import ParameterError

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([ymwd])\s*$", re.IGNORECASE)
MIN_TEST_BARS = 2


@dataclass(frozen=True)
class WalkForwardWindows:
    """How a walk-forward cuts time: calendar spans (``2y``, ``6m``, ``13w``, ``5d``).

    Attributes:
        train: training span per fold.
        test: test span per fold.
        embargo: gap between a training window's end and its test window's start.
        anchored: expanding training windows from the first bar instead of rolling ones.
    """

    train: str = "2y"
    test: str = "6m"
    embargo: str = "0d"
    anchored: bool = False


@dataclass(frozen=True)
class Fold:
    """One fold's time bounds (half-open: start inclusive, end exclusive)."""

    number: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    partial: bool


def parse_span(text: str, what: str) -> pd.DateOffset:
    """``"2y"``, ``"6m"``, ``"13w"``, ``"90d"`` (years, months, weeks, calendar days)."""
    match = _SPAN.match(str(text))
    if not match:
        raise ParameterError(f"cannot read the {what} span", found=repr(text), fix="write e.g. 2y, 6m, 13w or 90d")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit in ("y", "m") and not number.is_integer():
        raise ParameterError(
            f"{what} span in years or months must be whole", found=repr(text), fix="e.g. 18m instead of 1.5y"
        )
    if unit == "y":
        return pd.DateOffset(years=int(number))
    if unit == "m":
        return pd.DateOffset(months=int(number))
    if unit == "w":
        return pd.DateOffset(days=int(round(number * 7)))
    return pd.DateOffset(days=int(round(number)))


def make_folds(
    index: pd.DatetimeIndex, train: str, test: str, embargo: str = "0d", anchored: bool = False
) -> list[Fold]:
    """Folds over the timestamps of ``index`` (the union of the symbols' bars).

    Raises:
        ParameterError: spans that cannot be read, a zero test span, an embargo of a
            whole test window or more, or data too short for even one fold.
    """
    train_span, test_span = parse_span(train, "--train"), parse_span(test, "--test")
    embargo_span = parse_span(embargo, "--embargo")
    t0, last = index[0], index[-1]
    if t0 + test_span <= t0 or t0 + train_span <= t0:
        raise ParameterError("--train and --test must be longer than zero", found=f"train={train}, test={test}")
    if t0 + embargo_span >= t0 + test_span:
        raise ParameterError(
            "the embargo must be shorter than the test window",
            found=f"embargo={embargo}, test={test}",
            fix="use a few days of embargo, e.g. --embargo 5d",
        )
    folds: list[Fold] = []
    k = 0
    while True:
        test_start = t0 + train_span + embargo_span + k * test_span
        if test_start > last:
            break
        test_end = test_start + test_span
        train_end = test_start - embargo_span
        train_start = t0 if anchored else train_end - train_span
        in_test = int(((index >= test_start) & (index < test_end)).sum())
        partial = test_end > last + pd.Timedelta(1, "ns")
        if in_test >= MIN_TEST_BARS:
            folds.append(Fold(len(folds), train_start, train_end, test_start, test_end, bool(partial)))
        elif not partial:
            raise ParameterError(
                f"a test window holds {in_test} bar(s); walk-forward needs at least {MIN_TEST_BARS} per fold",
                found=f"--test {test}: {test_start} .. {test_end}",
                fix="use a longer --test (the span must cover at least two bars of the data)",
            )
        k += 1
    if not folds:
        span = f"{index[0].date()} .. {index[-1].date()}"
        raise ParameterError(
            "the data is too short for one walk-forward fold (train + embargo + test)",
            found=f"data {span}, train={train}, embargo={embargo}, test={test}",
            fix="shorten --train/--test or load a longer history",
        )
    return folds
