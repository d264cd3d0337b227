"""Performance metrics: hand-computed values, edge cases, properties, optional empyrical oracle."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rlpipe.evaluation.metrics import (
    best_slice_share,
    consistency,
    drawdown_curve,
    max_drawdown,
    profit_factor,
    returns,
    rolling_sharpe,
    sharpe,
    sharpe_window,
    win_rate,
)

HOURLY = 365.25 * 24  # bars per year of an hourly market


# Returns.
def test_returns_are_simple_per_bar_changes() -> None:
    r = returns(np.array([1.0, 1.2, 0.9, 1.1, 0.8]))
    assert r == pytest.approx([1.2 / 1.0 - 1, 0.9 / 1.2 - 1, 1.1 / 0.9 - 1, 0.8 / 1.1 - 1])
    assert r == pytest.approx([0.2, -0.25, 2 / 9, -3 / 11])


def test_returns_of_a_single_point_curve_are_empty() -> None:
    assert returns(np.array([1.0])).size == 0


# Max drawdown.
def test_max_drawdown_is_largest_peak_to_trough_fall_as_fraction_of_peak() -> None:
    # Peaks 1 -> 1.2; the worst trough after 1.2 is 0.8: (1.2 - 0.8) / 1.2 = 1/3.
    # (The earlier dip 1.2 -> 0.9 is only 0.25.)
    assert max_drawdown(np.array([1.0, 1.2, 0.9, 1.1, 0.8])) == pytest.approx((1.2 - 0.8) / 1.2)


def test_max_drawdown_uses_the_running_peak_not_the_global_one() -> None:
    # 2 -> 1 is a 50% fall; the later global peak 3 -> 2.4 is only 20%.
    assert max_drawdown(np.array([2.0, 1.0, 3.0, 2.4])) == pytest.approx(0.5)


def test_max_drawdown_of_a_rising_or_constant_curve_is_zero() -> None:
    assert max_drawdown(np.array([1.0, 1.1, 1.3, 1.7])) == 0.0
    assert max_drawdown(np.ones(5)) == 0.0


def test_max_drawdown_of_an_empty_curve_is_nan() -> None:
    assert math.isnan(max_drawdown(np.array([])))


def test_drawdown_curve_is_distance_below_running_peak_at_every_bar() -> None:
    dd = drawdown_curve(np.array([1.0, 1.2, 0.9, 1.1, 0.8]))
    # running peak: 1, 1.2, 1.2, 1.2, 1.2
    assert dd == pytest.approx([0.0, 0.0, 0.9 / 1.2 - 1, 1.1 / 1.2 - 1, 0.8 / 1.2 - 1])
    assert dd.min() == pytest.approx(-max_drawdown(np.array([1.0, 1.2, 0.9, 1.1, 0.8])))


# Sharpe.
def test_sharpe_is_mean_over_sample_std_annualised() -> None:
    r = [0.01, -0.02, 0.03, 0.0]
    mean = (0.01 - 0.02 + 0.03 + 0.0) / 4  # 0.005
    var = ((0.005) ** 2 + (-0.025) ** 2 + (0.025) ** 2 + (-0.005) ** 2) / (4 - 1)  # ddof=1
    expected = mean / math.sqrt(var) * math.sqrt(252)
    assert sharpe(np.array(r), 252) == pytest.approx(expected)
    assert sharpe(np.array(r), 252) == pytest.approx(
        statistics.mean(r) / statistics.stdev(r) * math.sqrt(252)
    )


def test_sharpe_annualisation_scales_with_square_root_of_periods() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0])
    assert sharpe(r, 4 * 252) == pytest.approx(2 * sharpe(r, 252))


def test_sharpe_of_an_all_zero_return_series_is_zero() -> None:
    assert sharpe(np.zeros(10), HOURLY) == 0.0


def test_sharpe_of_a_flat_equity_curve_is_zero() -> None:
    assert sharpe(returns(np.ones(20)), HOURLY) == 0.0


def test_sharpe_of_a_constant_nonzero_return_series_is_nan() -> None:
    # Documented: a constant series has no risk to scale by -> NaN when it is not zero.
    # Rounding in the mean of identical values must not turn "no risk" into a Sharpe of ~1e17
    # (np.full(10, 0.01).std(ddof=1) is 1.8e-18, not 0).
    cases = [(0.01, 5), (0.01, 10), (0.1, 3), (0.001, 100)]
    got = {case: sharpe(np.full(case[1], case[0]), 252) for case in cases}
    assert all(math.isnan(v) for v in got.values()), got


def test_sharpe_needs_at_least_two_returns() -> None:
    assert math.isnan(sharpe(np.array([0.05]), 252))
    assert math.isnan(sharpe(np.array([]), 252))


# Trade and slice metrics.
def test_profit_factor_is_gross_win_over_gross_loss() -> None:
    assert profit_factor(3.0, 2.0) == pytest.approx(1.5)
    assert profit_factor(0.0, 2.0) == 0.0


def test_profit_factor_without_trades_is_nan_and_without_losses_is_inf() -> None:
    assert math.isnan(profit_factor(0.0, 0.0))
    assert profit_factor(0.5, 0.0) == math.inf


def test_win_rate_is_wins_over_trades_and_nan_without_trades() -> None:
    assert win_rate(3, 4) == 0.75
    assert win_rate(0, 5) == 0.0
    assert math.isnan(win_rate(0, 0))


def test_consistency_is_fraction_of_strictly_positive_slices() -> None:
    # 0.0 is not positive: 2 of 4 slices
    assert consistency([0.1, -0.2, 0.0, 0.05]) == 0.5
    assert consistency([0.1, 0.2, 0.3]) == 1.0
    assert consistency([-0.1]) == 0.0
    assert math.isnan(consistency([]))


def test_best_slice_share_is_best_slice_over_net_total() -> None:
    # net = 0.3 - 0.1 + 0.2 = 0.4; best = 0.3 -> 0.75
    assert best_slice_share([0.3, -0.1, 0.2]) == pytest.approx(0.3 / 0.4)
    # with losers the best slice can carry more than the whole net total
    assert best_slice_share([0.5, -0.3]) == pytest.approx(0.5 / 0.2)


def test_best_slice_share_is_nan_when_net_total_is_not_positive() -> None:
    assert math.isnan(best_slice_share([0.1, -0.1]))  # net 0
    assert math.isnan(best_slice_share([0.1, -0.3]))  # net < 0
    assert math.isnan(best_slice_share([]))


# Properties.
positive_equity = arrays(
    np.float64,
    st.integers(1, 50),
    elements=st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False),
)
return_series = arrays(
    np.float64,
    st.integers(2, 50),
    elements=st.floats(-0.2, 0.2, allow_nan=False, allow_infinity=False),
)


@given(positive_equity)
def test_max_drawdown_of_positive_equity_lies_in_zero_one(equity: np.ndarray) -> None:
    dd = max_drawdown(equity)
    assert 0.0 <= dd < 1.0


@given(positive_equity, st.floats(1e-3, 1e3))
def test_max_drawdown_is_invariant_to_scaling_equity(equity: np.ndarray, c: float) -> None:
    assert max_drawdown(c * equity) == pytest.approx(max_drawdown(equity), abs=1e-12)


@given(positive_equity)
def test_drawdown_curve_is_non_positive_and_its_minimum_is_max_drawdown(equity: np.ndarray) -> None:
    dd = drawdown_curve(equity)
    assert dd.shape == equity.shape
    assert np.all(dd <= 0.0)
    assert -dd.min() == pytest.approx(max_drawdown(equity), abs=1e-15)


def _has_risk(r: np.ndarray) -> bool:
    return bool(r.std(ddof=1) > 1e-6 * max(1e-12, float(np.abs(r).max())))


@settings(max_examples=200)
@given(return_series, st.floats(1e-2, 1e2))
def test_sharpe_is_invariant_to_scaling_returns_by_a_positive_constant(r: np.ndarray, c: float) -> None:
    assume(_has_risk(r))
    assert sharpe(c * r, 252) == pytest.approx(sharpe(r, 252), rel=1e-9, abs=1e-9)


@given(return_series)
def test_sharpe_flips_sign_when_returns_are_negated(r: np.ndarray) -> None:
    assume(_has_risk(r))
    assert sharpe(-r, 252) == -sharpe(r, 252)


# Optional oracle: empyrical.
def test_max_drawdown_and_sharpe_agree_with_empyrical() -> None:
    empyrical = pytest.importorskip("empyrical")

    @settings(max_examples=50, deadline=None)
    @given(return_series)
    def check(r: np.ndarray) -> None:
        assume(_has_risk(r))
        equity = np.concatenate([[1.0], np.cumprod(1.0 + r)])
        # empyrical: drawdown as a negative fraction, on the curve starting at 1 before r[0]
        assert max_drawdown(equity) == pytest.approx(-empyrical.max_drawdown(r), abs=1e-12)
        assert sharpe(r, 252) == pytest.approx(
            empyrical.sharpe_ratio(r, risk_free=0.0, annualization=252), rel=1e-9
        )

    check()


def test_rolling_sharpe_is_the_slice_sharpe_of_each_window() -> None:
    rng = np.random.default_rng(4)
    equity = np.cumprod(1 + rng.normal(0.0005, 0.01, 120))
    rets = returns(equity)
    rolled = rolling_sharpe(equity, 24, HOURLY)
    assert len(rolled) == len(rets) - 24 + 1
    for i in (0, 37, len(rolled) - 1):
        assert rolled[i] == pytest.approx(sharpe(rets[i : i + 24], HOURLY), rel=1e-12)
    flat = np.concatenate([np.ones(30), 1 + 0.01 * np.arange(1, 11)])
    assert rolling_sharpe(flat, 10, HOURLY)[0] == 0.0  # no return, no risk: 0 as sharpe
    assert len(rolling_sharpe(equity[:10], 24, HOURLY)) == 0


def test_sharpe_window_is_seven_days_of_bars_or_half_a_short_slice() -> None:
    assert sharpe_window(2000, HOURLY) == 168
    assert sharpe_window(2000, 365.25) == 7
    assert sharpe_window(101, HOURLY) == 50
    assert sharpe_window(3, HOURLY) == 2
    assert sharpe_window(2000, math.nan) == 168  # no annualisation known: hourly bars assumed
