"""`bridge status` prints ledger amounts rounded for people (it printed 100362.162373003 and
396.6996660000001: a float's noise digits), and '-' for an unknown one."""

from __future__ import annotations

import math

from bridge.cli import _money


def test_amounts_are_rounded_with_thousands_separators() -> None:
    assert _money(100362.162373003) == "100,362.16"
    assert _money(396.6996660000001, 4) == "396.6997"
    assert _money(-42.75) == "-42.75"


def test_unknown_amounts_say_so() -> None:
    assert _money(None) == "-"
    assert _money(math.nan) == "nan"
    assert _money("n/a") == "n/a"
