"""Multiple-testing statistics: hand-computed PSR/DSR/E[max SR] and CSCV cases, properties, errors."""

from __future__ import annotations

import math
from math import comb, log, sqrt
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rlpipe.gates.statistics import (
    EULER_GAMMA,
    PBOResult,
    deflated_sharpe,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe,
    sharpe_per_period,
)

PHI = NormalDist().cdf
PHI_INV = NormalDist().inv_cdf


# Sharpe per period.
def test_sharpe_per_period_is_mean_over_sample_std() -> None:
    # [1, 2, 3, 6]: mean 3, squared deviations 4 + 1 + 0 + 9 = 14, ddof=1 variance 14/3.
    assert sharpe_per_period(np.array([1.0, 2.0, 3.0, 6.0])) == pytest.approx(3 / sqrt(14 / 3))


def test_sharpe_per_period_is_not_annualised_and_ignores_scale() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.005])
    assert sharpe_per_period(r) == pytest.approx(sharpe_per_period(100 * r))
    assert sharpe_per_period(-r) == pytest.approx(-sharpe_per_period(r))


@pytest.mark.parametrize("r", [[], [0.5], [0.1, 0.1, 0.1], [0.0, 0.0]])
def test_sharpe_per_period_is_nan_for_short_or_constant_series(r: list[float]) -> None:
    assert math.isnan(sharpe_per_period(np.array(r, dtype=float)))


# Probabilistic Sharpe.
def test_psr_is_one_half_when_sr_equals_benchmark() -> None:
    assert probabilistic_sharpe(0.2, 0.2, 50, 0.0, 3.0) == 0.5
    assert probabilistic_sharpe(0.0, 0.0, 10, -1.0, 9.0) == 0.5


def test_psr_hand_computed_value_for_normal_returns() -> None:
    # sqrt(n - 1) = 10; variance term 1 - 0 + (3 - 1)/4 * 0.01 = 1.005.
    expected = PHI(0.1 * 10 / sqrt(1 + 0.5 * 0.01))
    assert probabilistic_sharpe(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(expected, abs=1e-15)
    assert expected == pytest.approx(0.8408, abs=1e-4)


def test_psr_rises_with_sr_and_with_n_obs() -> None:
    by_sr = [probabilistic_sharpe(sr, 0.0, 100, 0.0, 3.0) for sr in (-0.1, 0.0, 0.05, 0.1, 0.2)]
    by_n = [probabilistic_sharpe(0.1, 0.0, n, 0.0, 3.0) for n in (10, 50, 100, 500)]
    assert by_sr == sorted(by_sr) and len(set(by_sr)) == len(by_sr)
    assert by_n == sorted(by_n) and len(set(by_n)) == len(by_n)


def test_psr_penalises_negative_skew_and_fat_tails_for_a_positive_sharpe() -> None:
    normal = probabilistic_sharpe(0.1, 0.0, 100, 0.0, 3.0)
    assert probabilistic_sharpe(0.1, 0.0, 100, -1.0, 3.0) < normal
    assert probabilistic_sharpe(0.1, 0.0, 100, 0.0, 10.0) < normal


@pytest.mark.parametrize(
    ("sr", "bench", "n", "skew", "kurt"),
    [
        (0.1, 0.0, 1, 0.0, 3.0),  # n_obs < 2
        (0.1, 0.0, 0, 0.0, 3.0),
        (1.0, 0.0, 100, 3.0, 3.0),  # 1 - 3 + 0.5 = -1.5 < 0
        (1.0, 0.0, 100, 2.0, 1.0),  # 1 - 2 + 0 = 0
        (math.nan, 0.0, 100, 0.0, 3.0),
        (0.1, math.nan, 100, 0.0, 3.0),
    ],
)
def test_psr_is_nan_when_undefined(sr: float, bench: float, n: int, skew: float, kurt: float) -> None:
    assert math.isnan(probabilistic_sharpe(sr, bench, n, skew, kurt))


# Expected maximum Sharpe.
def test_expected_max_sharpe_of_one_trial_is_zero() -> None:
    assert expected_max_sharpe(1, 0.04) == 0.0
    assert expected_max_sharpe(0, 0.04) == 0.0


def test_expected_max_sharpe_hand_computed_for_two_and_ten_trials() -> None:
    g = 0.5772156649015329
    assert g == EULER_GAMMA
    # N = 2: Phi^-1(1 - 1/2) = 0, so only the gamma term is left.
    two = sqrt(0.04) * g * PHI_INV(1 - 1 / (2 * math.e))
    ten = sqrt(0.04) * ((1 - g) * PHI_INV(1 - 1 / 10) + g * PHI_INV(1 - 1 / (10 * math.e)))
    assert expected_max_sharpe(2, 0.04) == pytest.approx(two, rel=1e-12)
    assert expected_max_sharpe(10, 0.04) == pytest.approx(ten, rel=1e-12)
    assert two == pytest.approx(0.2 * g * 0.90045, abs=1e-5)  # Phi^-1(0.816060) ~= 0.90045 (tables)


def test_expected_max_sharpe_grows_with_trials_and_variance() -> None:
    by_n = [expected_max_sharpe(n, 0.01) for n in (2, 5, 10, 100, 1000)]
    by_var = [expected_max_sharpe(10, v) for v in (0.0, 0.001, 0.01, 0.1)]
    assert by_n == sorted(by_n) and len(set(by_n)) == len(by_n)
    assert by_var == sorted(by_var) and by_var[0] == 0.0 and len(set(by_var)) == len(by_var)


def test_expected_max_sharpe_refuses_negative_variance() -> None:
    with pytest.raises(ValueError, match="sr_variance"):
        expected_max_sharpe(10, -0.01)
    with pytest.raises(ValueError) as err:
        expected_max_sharpe(10, -0.01)
    assert str(err.value) == "sr_variance must be >= 0 (a variance), got -0.01"


# Deflated Sharpe.
def test_dsr_of_one_trial_is_psr_against_zero_with_population_moments() -> None:
    # [0, 0, 0, 4]: mean 1, deviations -1, -1, -1, 3.
    # ddof=1 variance 12/3 = 4 -> SR = 1/2.  Population m2 = 3, m3 = 6, m4 = 21:
    # skew = 6 / 3**1.5 = 2/sqrt(3), raw kurtosis = 21/9 = 7/3.
    r = np.array([0.0, 0.0, 0.0, 4.0])
    sr, skew, kurt = 0.5, 2 / sqrt(3), 7 / 3
    var_term = 1 - skew * sr + (kurt - 1) / 4 * sr**2  # 1 - 1/sqrt(3) + 1/12
    expected = PHI(sr * sqrt(3) / sqrt(var_term))
    assert deflated_sharpe(r, 1, 0.5) == pytest.approx(expected, abs=1e-12)
    assert deflated_sharpe(r, 1, 0.5) == pytest.approx(probabilistic_sharpe(sr, 0.0, 4, skew, kurt))


def test_dsr_of_symmetric_series_uses_zero_skew() -> None:
    # [-1, 0, 1, 2]: symmetric about 0.5; SR^2 = 0.25 / (5/3) = 0.15; kurtosis 2.5625 / 1.5625 = 1.64.
    expected = PHI(sqrt(0.15) * sqrt(3) / sqrt(1 + 0.64 / 4 * 0.15))
    assert deflated_sharpe(np.array([-1.0, 0.0, 1.0, 2.0]), 1, 0.1) == pytest.approx(expected, abs=1e-12)


def test_dsr_falls_as_the_number_of_trials_grows() -> None:
    r = np.random.default_rng(3).normal(0.002, 0.01, 250)
    dsr = [deflated_sharpe(r, n, 1 / 250) for n in (1, 2, 10, 100, 1000)]
    assert dsr == sorted(dsr, reverse=True) and len(set(dsr)) == len(dsr)


def test_dsr_is_near_one_for_a_strong_series_and_small_for_noise_among_many_trials() -> None:
    rng = np.random.default_rng(0)
    strong = rng.normal(0.01, 0.01, 500)  # per-period SR ~ 1
    noise = rng.normal(0.0, 0.01, 500)
    # Under the null a per-period SR measured on n returns has variance ~ 1/n.
    assert deflated_sharpe(strong, 100, 1 / 500) > 0.999
    assert deflated_sharpe(noise, 1000, 1 / 500) < 0.01


def test_dsr_is_nan_for_constant_returns_and_refuses_zero_trials() -> None:
    assert math.isnan(deflated_sharpe(np.full(10, 0.01), 5, 0.01))
    with pytest.raises(ValueError, match="n_trials"):
        deflated_sharpe(np.array([0.1, 0.2, 0.0]), 0, 0.01)
    with pytest.raises(ValueError) as err:
        deflated_sharpe(np.array([0.1, 0.2, 0.0]), 0, 0.01)
    assert str(err.value) == "n_trials must be >= 1 (the selected trial counts), got 0"


def test_dsr_refuses_a_negative_trial_sharpe_variance() -> None:
    with pytest.raises(ValueError) as err:
        deflated_sharpe(np.array([0.1, 0.2, 0.0]), 3, -0.5)
    assert str(err.value) == "sr_variance must be >= 0 (a variance), got -0.5"


# PBO by CSCV.
def test_pbo_two_columns_two_splits_hand_computed_with_ties() -> None:
    # Block 0 (rows 0-1): A and B identical -> tied Sharpe.
    # Block 1 (rows 2-3): A = [1, 2] (SR 1.5/sqrt(0.5) = 2.12), B = [0, 2] (SR 1/sqrt(2) = 0.71).
    perf = np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 0.0], [2.0, 2.0]])
    res = pbo_cscv(perf, n_splits=2)
    # IS = block 0: tie -> n* = A (lowest index); OOS block 1: A is best, rank 2, omega 2/3, logit ln 2.
    # IS = block 1: n* = A; OOS block 0: A ties B, rank 1.5, omega 1/2, logit 0 -> counts as overfit.
    assert res.logits == pytest.approx([log(2.0), 0.0], abs=1e-15)
    assert res.logits[1] == 0.0
    assert res.pbo == 0.5
    assert (res.n_combinations, res.n_splits) == (2, 2)


def test_pbo_drops_the_oldest_remainder_rows() -> None:
    perf = np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 0.0], [2.0, 2.0]])
    # A wild first row: if it were kept (and the last row dropped) the blocks and logits would change.
    with_old_row = np.vstack([[100.0, -100.0], perf])
    res = pbo_cscv(with_old_row, n_splits=2)
    assert res.logits == pytest.approx([log(2.0), 0.0], abs=1e-15)
    assert res.pbo == 0.5


def test_pbo_is_zero_when_one_trial_dominates_every_block() -> None:
    rng = np.random.default_rng(1)
    perf = rng.normal(0.0, 0.01, (120, 4))
    perf[:, 2] = 1.0 + rng.normal(0.0, 0.01, 120)  # SR ~ 100 in every block
    res = pbo_cscv(perf, n_splits=6)
    # n* is always column 2 and always best OOS: rank N = 4, omega 4/5, logit ln 4.
    assert res.pbo == 0.0
    assert res.logits == pytest.approx(np.full(comb(6, 3), log(4.0)))


def test_pbo_is_one_when_the_in_sample_winner_is_always_the_out_of_sample_loser() -> None:
    # B = -A and A sums to 0 over all blocks, so A's OOS mean is minus its IS mean in every split:
    # whichever column wins IS (positive mean) loses OOS.  Block sums 1, 2, 4, -7: no two sum to 0,
    # so no split has a tie.
    a = np.array([0.0, 1.0, 0.0, 2.0, 1.0, 3.0, -3.0, -4.0])
    res = pbo_cscv(np.column_stack([a, -a]), n_splits=4)
    # Rank 1 of N = 2: omega 1/3, logit ln(1/2).
    assert res.pbo == 1.0
    assert res.logits == pytest.approx(np.full(6, -log(2.0)))


def test_pbo_of_pure_noise_is_around_one_half() -> None:
    perf = np.random.default_rng(7).normal(0.0, 0.01, (1000, 20))
    res = pbo_cscv(perf, n_splits=10)
    assert 0.2 < res.pbo < 0.8
    assert res.logits.shape == (252,)


@pytest.mark.parametrize("n_splits", [2, 4, 6, 8, 10])
def test_pbo_evaluates_every_half_split_of_the_blocks(n_splits: int) -> None:
    perf = np.random.default_rng(n_splits).normal(size=(40, 3))
    res = pbo_cscv(perf, n_splits=n_splits)
    assert isinstance(res, PBOResult)
    assert res.n_combinations == comb(n_splits, n_splits // 2) == res.logits.size
    assert res.n_splits == n_splits
    assert res.pbo == np.mean(res.logits <= 0)


def test_pbo_ranks_a_flat_trial_at_zero_sharpe_instead_of_failing() -> None:
    # Column 0 never trades; column 1 gains in blocks 0 and 2, loses in 1 and 3.
    up, down = [1.0, 2.0], [-1.0, -2.0]
    gain = np.array(up + down + up + down)
    res = pbo_cscv(np.column_stack([np.zeros(8), gain]), n_splits=4)
    # IS {0, 2}: column 1 wins (SR > 0), OOS {1, 3} it is below the flat 0 -> logit ln(1/2).
    # IS {1, 3}: the flat column wins, OOS it is below column 1 -> logit ln(1/2).
    # Mixed splits: column 1 has mean 0 -> SR 0 ties the flat one IS (n* = 0) and OOS -> logit 0.
    assert res.logits == pytest.approx([0.0, -log(2.0), 0.0, 0.0, -log(2.0), 0.0])
    assert res.pbo == 1.0


@pytest.mark.parametrize("n_splits", [3, 0, -2, 1])
def test_pbo_refuses_odd_or_too_small_n_splits(n_splits: int) -> None:
    with pytest.raises(ValueError, match="n_splits"):
        pbo_cscv(np.zeros((40, 3)) + np.arange(40)[:, None], n_splits=n_splits)
    with pytest.raises(ValueError) as err:
        pbo_cscv(np.zeros((40, 3)) + np.arange(40)[:, None], n_splits=n_splits)
    assert str(err.value) == (
        f"n_splits must be even and >= 2 (halves of the blocks are compared), got {n_splits}"
    )


def test_pbo_refuses_fewer_than_two_trials() -> None:
    with pytest.raises(ValueError, match="at least two trials"):
        pbo_cscv(np.arange(40.0).reshape(40, 1), n_splits=4)
    with pytest.raises(ValueError) as err:
        pbo_cscv(np.arange(40.0).reshape(40, 1), n_splits=4)
    assert str(err.value) == "PBO needs at least two trials (columns) to choose between, got 1"


def test_pbo_refuses_blocks_of_fewer_than_two_rows() -> None:
    with pytest.raises(ValueError, match=r"19 rows.*n_splits=10"):
        pbo_cscv(np.random.default_rng(0).normal(size=(19, 3)), n_splits=10)
    with pytest.raises(ValueError) as err:
        pbo_cscv(np.random.default_rng(0).normal(size=(19, 3)), n_splits=10)
    assert str(err.value) == (
        "performance has 19 rows: too few for n_splits=10 blocks of >= 2 rows each; "
        "supply at least 20 rows or lower n_splits"
    )
    assert pbo_cscv(np.random.default_rng(0).normal(size=(20, 3)), n_splits=10).n_combinations == 252


def test_pbo_refuses_non_matrix_or_non_finite_input() -> None:
    with pytest.raises(ValueError, match="2-D"):
        pbo_cscv(np.arange(40.0), n_splits=2)
    perf = np.random.default_rng(0).normal(size=(40, 3))
    perf[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pbo_cscv(perf, n_splits=2)
    with pytest.raises(ValueError) as err:
        pbo_cscv(np.arange(40.0), n_splits=2)
    assert str(err.value) == "performance must be a 2-D matrix (periods x trials), got shape (40,)"
    perf[5, 1] = np.inf
    with pytest.raises(ValueError) as err:
        pbo_cscv(perf, n_splits=2)
    assert str(err.value) == "performance contains NaN or inf; fill or drop those periods first"


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, (24, 3), elements=st.floats(-1.0, 1.0, allow_nan=False)),
    st.sampled_from([2, 4, 6]),
)
def test_pbo_is_a_fraction_and_logits_stay_within_rank_bounds(perf: np.ndarray, n_splits: int) -> None:
    res = pbo_cscv(perf, n_splits=n_splits)
    assert 0.0 <= res.pbo <= 1.0
    # Ranks run from 1 to N = 3: logits between ln(1/3) and ln(3).
    assert np.all(res.logits >= log(1 / 3) - 1e-12) and np.all(res.logits <= log(3) + 1e-12)
    assert res.pbo == pytest.approx(np.mean(res.logits <= 0))
