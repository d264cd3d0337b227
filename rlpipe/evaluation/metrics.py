"""Performance metrics on equity curves and closed trades (pure functions on arrays)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rlpipe.types import FloatArray


def returns(equity: FloatArray) -> FloatArray:
    """Simple per-bar returns of an equity curve."""
    e = np.asarray(equity, dtype=float)
    return e[1:] / e[:-1] - 1.0


def max_drawdown(equity: FloatArray) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak (0.25 = -25%)."""
    e = np.asarray(equity, dtype=float)
    if e.size == 0:
        return math.nan
    peak = np.maximum.accumulate(e)
    return float(np.max(1.0 - e / peak))


def drawdown_curve(equity: FloatArray) -> FloatArray:
    """Drawdown at every bar, as a non-positive fraction."""
    e = np.asarray(equity, dtype=float)
    return e / np.maximum.accumulate(e) - 1.0


def sharpe(rets: FloatArray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio (zero risk-free rate, sample std with ddof=1).

    A constant return series has no risk to scale by: 0.0 when it is zero, NaN otherwise.
    """
    r = np.asarray(rets, dtype=float)
    if r.size < 2:
        return math.nan
    if np.ptp(r) == 0:  # exact test: rounding leaves a tiny std on a constant series
        return 0.0 if r[0] == 0 else math.nan
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(periods_per_year))


def profit_factor(gross_win: float, gross_loss: float) -> float:
    """Sum of winning trades over the sum of losing trades (both positive).

    NaN without any closed trade; +inf with wins and no loss.
    """
    if math.isnan(gross_win) or math.isnan(gross_loss):
        return math.nan
    if gross_loss == 0:
        return math.inf if gross_win > 0 else math.nan
    return float(gross_win / gross_loss)


def win_rate(wins: int, trades: int) -> float:
    """Winning fraction of closed trades; NaN without trades."""
    return wins / trades if trades else math.nan


def consistency(totals: Sequence[float]) -> float:
    """Fraction of slices whose total after fees is positive."""
    t = np.asarray(totals, dtype=float)
    return float((t > 0).mean()) if t.size else math.nan


def best_slice_share(totals: Sequence[float]) -> float:
    """Share of the net total carried by the best slice; NaN when the net total is not positive."""
    t = np.asarray(totals, dtype=float)
    net = t.sum()
    return float(t.max() / net) if t.size and net > 0 else math.nan


ROLLING_SHARPE_DAYS = 7.0
"""Rolling Sharpe window in days of bars, cut to half the slice when the slice is shorter."""


def rolling_sharpe(equity: FloatArray, window: int, bars_per_year: float) -> FloatArray:
    """Annualised Sharpe of the last `window` bar returns of `equity`, at each bar from `window` on.

    Value i covers the returns into bars i+1 .. i+window (so it belongs to bar i+window); a
    window of constant returns gives 0 when they are zero and NaN otherwise, as `sharpe`.
    """
    rets = np.asarray(equity, float)[1:] / np.asarray(equity, float)[:-1] - 1.0
    if window < 2 or len(rets) < window:
        return np.zeros(0)
    win = np.lib.stride_tricks.sliding_window_view(rets, window)
    flat = np.ptp(win, axis=1) == 0
    sd = win.std(axis=1, ddof=1)
    out = np.divide(win.mean(axis=1), sd, out=np.full(len(win), np.nan), where=~flat)
    out[flat & (win[:, 0] == 0)] = 0.0
    return out * math.sqrt(bars_per_year)


def sharpe_window(bars: int, bars_per_year: float) -> int:
    """Bars in the rolling Sharpe window: ROLLING_SHARPE_DAYS of bars, at most half the slice."""
    per_day = bars_per_year / 365.25 if math.isfinite(bars_per_year) else 24.0
    return max(2, min(round(ROLLING_SHARPE_DAYS * per_day), (bars - 1) // 2))
