"""The training-length rule: the earliest checkpoint within the tolerance of the best validation score."""

from __future__ import annotations

import math

import pytest

from rlpipe.gates.selection import LengthPoint, select_length


def points(*scores: float) -> list[LengthPoint]:
    return [LengthPoint(500_000 * (i + 1), 500_000 * (i + 1) + 7, s) for i, s in enumerate(scores)]


def test_the_earliest_length_as_good_as_the_best_within_the_tolerance_is_kept():
    choice = select_length(points(1.0, 1.95, 2.0, 1.5), tolerance=0.05, metric="sharpe_mean")
    assert choice.selected.timesteps == 1_000_000  # 1.95 >= 2.0 - 0.05 * 2.0
    assert choice.candidates == 4
    assert "best 2.000 at 1500000" in choice.reason and "1.900" in choice.reason


def test_zero_tolerance_keeps_the_best_and_a_negative_best_widens_downwards():
    assert select_length(points(1.0, 1.95, 2.0), 0.0, "m").selected.timesteps == 1_500_000
    # best -1.0: floor -1.0 - 0.5 * 1.0 = -1.5 keeps the first at -1.4
    assert select_length(points(-1.4, -1.0, -3.0), 0.5, "m").selected.timesteps == 500_000


def test_order_of_the_points_does_not_matter_and_nan_scores_never_win():
    shuffled = list(reversed(points(math.nan, 0.3, 0.1)))
    choice = select_length(shuffled, 0.0, "m")
    assert choice.selected.timesteps == 1_000_000
    assert [p.timesteps for p in choice.points] == [500_000, 1_000_000, 1_500_000]


def test_without_validation_scores_the_last_is_kept_and_the_reason_says_why():
    choice = select_length(points(math.nan, math.nan), 0.05, "sharpe_mean")
    assert choice.selected.timesteps == 1_000_000
    assert "no validation/sharpe_mean" in choice.reason and "kept the last" in choice.reason
    with pytest.raises(ValueError):
        select_length([], 0.05, "m")
