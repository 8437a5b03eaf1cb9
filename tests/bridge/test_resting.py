"""Research's fill rules for resting protective orders (the sim broker's trigger), hand-computed."""

from __future__ import annotations

from bridge.brokers.resting import Resting, first_fill, ratchet


def long_kids() -> list[Resting]:
    return [Resting("e:sl", "stop", "SELL", 95.0), Resting("e:tp", "take_profit", "SELL", 110.0)]


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    c, px = first_fill(long_kids(), 90.0, 93.0, 88.0)  # type: ignore[misc]
    assert (c.role, px) == ("stop", 90.0)


def test_a_touch_fills_at_the_level_and_the_stop_wins_a_bar_touching_both() -> None:
    assert [(c.role, px) for c, px in [first_fill(long_kids(), 100.0, 105.0, 94.0)]] == [("stop", 95.0)]  # type: ignore[misc]
    assert [(c.role, px) for c, px in [first_fill(long_kids(), 100.0, 111.0, 96.0)]] == [("take_profit", 110.0)]  # type: ignore[misc]
    assert first_fill(long_kids(), 100.0, 112.0, 94.0)[0].role == "stop"  # type: ignore[index]
    assert first_fill(long_kids(), 100.0, 109.0, 96.0) is None


def test_a_gap_through_the_target_fills_at_the_better_open() -> None:
    c, px = first_fill(long_kids(), 112.0, 113.0, 94.0)  # type: ignore[misc]
    assert (c.role, px) == ("take_profit", 112.0)


def test_shorts_mirror() -> None:
    kids = [Resting("e:sl", "stop", "BUY", 105.0), Resting("e:tp", "take_profit", "BUY", 90.0)]
    assert first_fill(kids, 100.0, 106.0, 89.0)[0].role == "stop"  # type: ignore[index]
    assert first_fill(kids, 100.0, 104.0, 89.0)[1] == 90.0  # type: ignore[index]
    assert first_fill(kids, 107.0, 108.0, 100.0)[1] == 107.0  # type: ignore[index]


def test_a_trailing_stop_ratchets_only_after_the_check() -> None:
    trail = Resting("e:tr", "trail", "SELL", 95.0, trail_pct=5.0, mark=100.0)
    assert first_fill([trail], 100.0, 120.0, 96.0) is None  # level 95: the bar's own high does not count
    ratchet([trail], 120.0, 96.0)
    assert trail.trail_level() == 114.0
    c, px = first_fill([trail], 118.0, 119.0, 113.0)  # type: ignore[misc]
    assert (c.role, px) == ("trail", 114.0)
