"""Multiple-testing statistics for sweeps: how much of the best trial's Sharpe is luck?

A sweep tries many configurations and keeps the best. Even with no skill at all, the best of N trials
has a Sharpe ratio well above zero, so the winner's Sharpe is an inflated estimate of what it will
earn next. The functions here put numbers on that inflation:

- `probabilistic_sharpe` (PSR) answers "how likely is the true Sharpe above a benchmark, given this
  sample's length, skewness and tails?" (Bailey & Lopez de Prado, 2012, "The Sharpe Ratio Efficient
  Frontier", and 2014, "The Deflated Sharpe Ratio").
- `expected_max_sharpe` answers "how high would the best Sharpe of N skill-less trials be?"
- `deflated_sharpe` (DSR) is the PSR against that expected maximum: the probability that the chosen
  trial beats the best that luck alone would have produced (Bailey & Lopez de Prado, 2014).
- `pbo_cscv` answers "how often does the in-sample winner land in the bottom half out of sample?" by
  combinatorially symmetric cross-validation (Bailey, Borwein, Lopez de Prado & Zhu, 2015, "The
  Probability of Backtest Overfitting").

All Sharpe ratios here are per period (not annualised), with a zero risk-free rate. Pure numpy and the
standard library: no scipy, hydra or mlflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np

from rlpipe.types import FloatArray

EULER_GAMMA: float = 0.5772156649015329

_NORMAL = NormalDist()


def sharpe_per_period(returns: FloatArray) -> float:
    """Per-period Sharpe ratio: mean over sample standard deviation (ddof=1), not annualised.

    Args:
        returns: Per-period returns.

    Returns:
        The Sharpe ratio; NaN with fewer than two values or a constant series (no risk to scale by).
    """
    r = np.asarray(returns, dtype=float)
    if r.size < 2 or np.ptp(r) == 0:  # exact test: rounding leaves a tiny std on a constant series
        return math.nan
    return float(r.mean() / r.std(ddof=1))


def probabilistic_sharpe(sr: float, sr_benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """Probabilistic Sharpe ratio: probability that the true Sharpe exceeds `sr_benchmark`.

    PSR = Phi((sr - sr_benchmark) * sqrt(n_obs - 1) / sqrt(1 - skew * sr + (kurtosis - 1) / 4 * sr**2)).

    Args:
        sr: Observed per-period Sharpe ratio.
        sr_benchmark: Per-period Sharpe ratio to beat.
        n_obs: Number of returns `sr` was measured on.
        skew: Skewness of those returns.
        kurtosis: Raw (non-excess) kurtosis of those returns; 3 for a normal distribution.

    Returns:
        A probability in [0, 1]; NaN for n_obs < 2, a non-finite input, or a non-positive variance term
        (moments inconsistent with `sr`, e.g. a strongly right-skewed sample with a large Sharpe).
    """
    if n_obs < 2 or not all(math.isfinite(x) for x in (sr, sr_benchmark, skew, kurtosis)):
        return math.nan
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if var_term <= 0:
        return math.nan
    z = (sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(var_term)
    return _NORMAL.cdf(z)


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """Expected best Sharpe ratio among `n_trials` independent trials that have no skill.

    E[max SR] ~= sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N * e))), with gamma the
    Euler-Mascheroni constant (the extreme-value approximation of Bailey & Lopez de Prado, 2014).

    Args:
        n_trials: Number of independent trials the best was chosen from.
        sr_variance: Variance of the per-period Sharpe ratios across those trials.

    Returns:
        The expected maximum per-period Sharpe ratio; 0.0 for n_trials <= 1 (nothing was selected).

    Raises:
        ValueError: If `sr_variance` is negative.
    """
    if sr_variance < 0:
        raise ValueError(f"sr_variance must be >= 0 (a variance), got {sr_variance}")
    if n_trials <= 1:
        return 0.0
    n = float(n_trials)
    z = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n * math.e)
    )
    return math.sqrt(sr_variance) * z


def _skew_kurtosis(r: FloatArray) -> tuple[float, float]:
    """Population (biased, ddof=0) skewness and raw kurtosis, as in Bailey & Lopez de Prado's code."""
    d = r - r.mean()
    m2 = float(np.mean(d**2))
    return float(np.mean(d**3)) / m2**1.5, float(np.mean(d**4)) / m2**2


def deflated_sharpe(returns: FloatArray, n_trials: int, trial_sharpe_variance: float) -> float:
    """Deflated Sharpe ratio: the PSR of `returns` against the best Sharpe luck would give `n_trials`.

    Skewness and kurtosis are population moments (ddof=0) of `returns`; the Sharpe ratio itself uses the
    sample standard deviation (ddof=1), as `sharpe_per_period` does.

    Args:
        returns: Per-period returns of the selected trial.
        n_trials: Number of independent trials it was selected from (1 gives the PSR against 0).
        trial_sharpe_variance: Variance of the per-period Sharpe ratios across the trials.

    Returns:
        A probability in [0, 1]; NaN where the Sharpe ratio or the PSR is undefined.

    Raises:
        ValueError: If `n_trials` < 1 or `trial_sharpe_variance` is negative.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1 (the selected trial counts), got {n_trials}")
    r = np.asarray(returns, dtype=float)
    sr = sharpe_per_period(r)
    if math.isnan(sr):
        return math.nan
    skew, kurt = _skew_kurtosis(r)
    benchmark = expected_max_sharpe(n_trials, trial_sharpe_variance)
    return probabilistic_sharpe(sr, benchmark, r.size, skew, kurt)


@dataclass(frozen=True)
class PBOResult:
    """Outcome of combinatorially symmetric cross-validation."""

    pbo: float
    """Fraction of combinations whose in-sample best is at or below the out-of-sample median (logit <= 0)."""
    logits: FloatArray
    """One logit of the in-sample best's relative out-of-sample rank per combination."""
    n_combinations: int
    """Number of in-sample/out-of-sample splits evaluated: C(n_splits, n_splits / 2)."""
    n_splits: int
    """Number of contiguous blocks the periods were cut into."""


def _column_sharpes(perf: FloatArray) -> FloatArray:
    """Per-column per-period Sharpe; a constant column ranks as 0 when flat, else +/-inf.

    A flat (never trading) configuration is common in a sweep, so it must rank rather than be NaN: a
    riskless zero return sits with the zero-Sharpe trials, a riskless gain above everything.
    """
    mean = perf.mean(axis=0)
    sd = perf.std(axis=0, ddof=1)
    # ptp == 0: constant, though rounding may leave a tiny std; sd == 0: a spread that underflows.
    constant = (np.ptp(perf, axis=0) == 0) | (sd == 0)
    sd = np.where(constant, 1.0, sd)
    riskless = np.where(mean > 0, np.inf, np.where(mean < 0, -np.inf, 0.0))
    out: FloatArray = np.where(constant, riskless, mean / sd)
    return out


def pbo_cscv(performance: FloatArray, n_splits: int = 10) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    The T periods are cut into `n_splits` contiguous blocks of equal size (the T % n_splits oldest rows are
    dropped, so the most recent data is kept). Every choice of half the blocks is an in-sample set, the rest
    out-of-sample. For each, the in-sample best trial n* (highest per-period Sharpe, ties to the lowest
    index) gets its out-of-sample rank among the N trials (1 = worst, ties averaged),
    omega = rank / (N + 1) and logit = ln(omega / (1 - omega)). PBO is the fraction of logits <= 0.
    A trial constant on a set of rows ranks there with Sharpe 0 when flat at zero, else +/-inf.

    Args:
        performance: Matrix of per-period returns, T rows in time order by N columns (trials).
        n_splits: Number of blocks; even and >= 2.

    Returns:
        The PBO, the logit of every combination, and the counts used.

    Raises:
        ValueError: If `performance` is not a finite 2-D matrix, has fewer than two columns, `n_splits`
            is odd or < 2, or there are fewer than 2 rows per block.
    """
    perf = np.asarray(performance, dtype=float)
    if perf.ndim != 2:
        raise ValueError(f"performance must be a 2-D matrix (periods x trials), got shape {perf.shape}")
    n_rows, n_trials = perf.shape
    if n_trials < 2:
        raise ValueError(f"PBO needs at least two trials (columns) to choose between, got {n_trials}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(
            f"n_splits must be even and >= 2 (halves of the blocks are compared), got {n_splits}"
        )
    block = n_rows // n_splits
    if block < 2:
        raise ValueError(
            f"performance has {n_rows} rows: too few for n_splits={n_splits} blocks of >= 2 rows each; "
            f"supply at least {2 * n_splits} rows or lower n_splits"
        )
    if not np.isfinite(perf).all():
        raise ValueError("performance contains NaN or inf; fill or drop those periods first")
    blocks = perf[n_rows - block * n_splits :].reshape(n_splits, block, n_trials)

    logits = []
    for is_idx in combinations(range(n_splits), n_splits // 2):
        oos_idx = [b for b in range(n_splits) if b not in is_idx]
        is_sr = _column_sharpes(blocks[list(is_idx)].reshape(-1, n_trials))
        oos_sr = _column_sharpes(blocks[oos_idx].reshape(-1, n_trials))
        best = int(np.argmax(is_sr))  # first maximum: ties go to the lowest index
        v = oos_sr[best]
        rank = float(np.sum(oos_sr < v)) + (float(np.sum(oos_sr == v)) + 1.0) / 2.0
        # omega / (1 - omega) == rank / (N + 1 - rank); this form gives exactly 0 at the median.
        logits.append(math.log(rank) - math.log(n_trials + 1 - rank))
    arr = np.asarray(logits, dtype=float)
    return PBOResult(pbo=float(np.mean(arr <= 0)), logits=arr, n_combinations=arr.size, n_splits=n_splits)
