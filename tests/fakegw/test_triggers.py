"""Trigger and fill prices along price moves, computed by hand (no sockets)."""

from __future__ import annotations

import pytest

from .triggers import (
    Move,
    bar_moves,
    bar_points,
    check_ticks,
    extension_points,
    limit_hit,
    split_at,
    stop_hit,
    trail_level,
    trail_step,
)


def test_bar_path_is_low_first_for_up_bars_and_high_first_for_down_bars() -> None:
    assert bar_points(100, 105, 95, 103, "auto") == [100, 95, 105, 103]
    assert bar_points(100, 105, 95, 97, "auto") == [100, 105, 95, 97]
    assert bar_points(100, 105, 95, 97, "low_first") == [100, 95, 105, 97]
    assert bar_points(100, 105, 95, 103, "high_first") == [100, 105, 95, 103]
    with pytest.raises(ValueError, match="not one of"):
        bar_points(100, 105, 95, 103, "random")


def test_bar_moves_gap_to_the_open_then_continuous_segments() -> None:
    assert bar_moves(101.0, [100, 95, 105, 103]) == [
        Move(101.0, 100, "gap"),
        Move(100, 95, "path"),
        Move(95, 105, "path"),
        Move(105, 103, "path"),
    ]


@pytest.mark.parametrize(
    ("stop", "buy", "move", "expected"),
    [
        (95.0, False, Move(100, 90, "path"), 95.0),  # touched inside a segment: at the stop
        (95.0, False, Move(100, 96, "path"), None),  # not reached
        (95.0, False, Move(100, 92, "gap"), 92.0),  # gapped through: the first price beyond (the open)
        (95.0, False, Move(100, 92, "set"), 92.0),  # unknown path: the harsher end price
        (95.0, False, Move(94, 90, "path"), 94.0),  # already beyond at the segment start
        (105.0, True, Move(100, 110, "path"), 105.0),
        (105.0, True, Move(100, 108, "gap"), 108.0),
        (105.0, True, Move(110, 100, "path"), 110.0),
    ],
)
def test_stop_hit(stop: float, buy: bool, move: Move, expected: float | None) -> None:
    assert stop_hit(stop, buy, move) == expected


@pytest.mark.parametrize(
    ("limit", "buy", "move", "expected"),
    [
        (95.0, True, Move(100, 90, "path"), 95.0),  # at the limit
        (95.0, True, Move(100, 93, "gap"), 93.0),  # a better open
        (95.0, True, Move(100, 93, "set"), 95.0),  # unknown path: no price improvement
        (95.0, True, Move(100, 95.01, "path"), None),
        (105.0, False, Move(100, 106, "path"), 105.0),
        (105.0, False, Move(100, 107, "gap"), 107.0),
    ],
)
def test_limit_hit(limit: float, buy: bool, move: Move, expected: float | None) -> None:
    assert limit_hit(limit, buy, move) == expected


def test_trail_level_amount_percent_and_floor() -> None:
    assert trail_level(False, 100.0, None, 5.0, None) == 95.0
    assert trail_level(False, 100.0, None, None, 2.0) == pytest.approx(98.0)
    assert trail_level(False, 100.0, 97.0, 5.0, None) == 97.0  # trailStopPrice above the trail: it starts there
    assert trail_level(True, 100.0, None, 5.0, None) == 105.0
    assert trail_level(True, 100.0, 103.0, 5.0, None) == 103.0
    assert trail_level(False, 100.0, None, None, None) is None


def test_sell_trail_ratchets_up_and_fills_at_its_level_inside_a_segment() -> None:
    def level(anchor: float) -> float | None:
        return trail_level(False, anchor, None, 5.0, None)

    anchor, hit = trail_step(False, 100.0, Move(100, 110, "path"), level)
    assert (anchor, hit) == (110, None)  # stop now 105
    anchor, hit = trail_step(False, anchor, Move(110, 106, "path"), level)
    assert (anchor, hit) == (110, None)  # falling, 106 > 105
    anchor, hit = trail_step(False, anchor, Move(106, 100, "path"), level)
    assert hit == 105.0
    assert trail_step(False, 110.0, Move(106, 101, "gap"), level) == (110.0, 101)  # gapped through: at the gap price


def test_buy_trail_ratchets_down() -> None:
    def level(anchor: float) -> float | None:
        return trail_level(True, anchor, None, 2.0, None)

    anchor, hit = trail_step(True, 100.0, Move(100, 90, "path"), level)
    assert (anchor, hit) == (90, None)
    assert trail_step(True, anchor, Move(90, 95, "path"), level) == (90, 92.0)


def test_forming_bar_update_walks_only_new_extremes() -> None:
    assert extension_points((95.0, 105.0), 94.0, 105.0, 100.0, True) == [94.0, 100.0]
    assert extension_points((95.0, 105.0), 94.0, 106.0, 100.0, False) == [106.0, 94.0, 100.0]
    assert extension_points((95.0, 105.0), 96.0, 104.0, 100.0, True) == [100.0]


def test_ticks_must_start_at_open_end_at_close_and_stay_in_range() -> None:
    assert check_ticks([100, 97, 104, 102], 100, 105, 95, 102) == [100.0, 97.0, 104.0, 102.0]
    with pytest.raises(ValueError, match="start at the open 100"):
        check_ticks([99, 102], 100, 105, 95, 102)
    with pytest.raises(ValueError, match=r"outside the bar's range \[95, 105\]"):
        check_ticks([100, 94, 102], 100, 105, 95, 102)
    with pytest.raises(ValueError, match="ticks is empty"):
        check_ticks([], 100, 105, 95, 102)


def test_split_at_cuts_a_segment_at_the_levels_inside_it_in_path_order() -> None:
    assert split_at(Move(100, 90, "path"), [95.0, 92.0, 100.0, 80.0, 95.0]) == [
        Move(100, 95.0, "path"),
        Move(95.0, 92.0, "path"),
        Move(92.0, 90, "path"),
    ]
    assert split_at(Move(90, 100, "path"), [95.0, 92.0]) == [
        Move(90, 92.0, "path"),
        Move(92.0, 95.0, "path"),
        Move(95.0, 100, "path"),
    ]
    assert split_at(Move(100, 90, "gap"), [95.0]) == [Move(100, 90, "gap")]  # a gap trades one price only
