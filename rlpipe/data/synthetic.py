"""Seeded regime-switching market with an optional planted, learnable signal.

The market follows a declared schedule of bull / bear / sideways segments, so that slice
declarations can be checked against the truth. The planted signal is a persistent latent
drift `z` (an AR(1) process) that moves the next bar's expected return by
`signal_strength * sigma * z`; it is not an input column, but past returns reveal it, so an
agent that reads momentum can profit. With `signal_strength=0` the market is pure regime noise
and no agent should be promoted on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.data.data_config import Segment
from rlpipe.errors import ConfigError
from rlpipe.types import REGIMES

# Drift and volatility multipliers per regime: bull and bear trend, sideways mean-reverts.
_DRIFT_SIGN = {"bull": 1.0, "bear": -1.0, "sideways": 0.0}
_VOL_MULT = {"bull": 1.0, "bear": 1.3, "sideways": 0.8}


def make_synthetic_market(
    seed: int,
    segments: Sequence[Segment | dict],
    start: str = "2021-01-01",
    freq: str = "1h",
    initial_price: float = 100.0,
    sigma: float = 0.005,
    trend: float = 1.5e-4,
    mean_reversion: float = 0.01,
    signal_strength: float = 0.1,
    signal_persistence: float = 0.98,
    spread_bps: float = 2.0,
) -> pd.DataFrame:
    """Generate hourly (by default) OHLCV + bid/ask bars following a regime schedule.

    Args:
        seed: the market's own seed (independent of the agent's seed).
        segments: the regime schedule, each a `Segment` or a dict with `regime` and `days`.
        start: first bar's timestamp (UTC).
        freq: bar length, a pandas offset string.
        initial_price: first open.
        sigma: per-bar volatility of log returns before the regime multiplier.
        trend: per-bar log drift of bull (+) and bear (-) segments.
        mean_reversion: pull of sideways segments back to their starting level, per bar.
        signal_strength: size of the planted drift in units of sigma (0 disables it).
        signal_persistence: AR(1) coefficient of the latent signal.
        spread_bps: full bid/ask spread in basis points around the close.

    Returns:
        A frame satisfying the market-data contract, plus a `regime` column (ground truth).
    """
    segs = _checked_segments(segments)
    if not 0 <= signal_persistence < 1:
        raise ConfigError(f"data.signal_persistence={signal_persistence}; must lie in [0, 1)")
    step = pd.Timedelta(freq)
    plan = _bar_plan(segs, step, sigma, trend)
    rng = np.random.default_rng(seed)
    # The draws below come in a fixed order (returns, signal shocks, wicks, volume): the same seed
    # must keep giving the same market.
    log_close = _log_closes(
        plan, rng, initial_price, sigma, mean_reversion, signal_strength, signal_persistence
    )
    columns = _bars(log_close, plan.vol, rng, initial_price, spread_bps)
    index = pd.date_range(pd.Timestamp(start, tz="UTC"), periods=len(log_close), freq=step, name="timestamp")
    return pd.DataFrame({**columns, "regime": plan.regime}, index=index)


def _checked_segments(segments: Sequence[Segment | dict]) -> list[Segment]:
    """The schedule as `Segment`s, each with a known regime and a positive length."""
    segs = [s if isinstance(s, Segment) else Segment(**s) for s in segments]
    for i, s in enumerate(segs):
        if s.regime not in REGIMES:
            raise ConfigError(f"data.segments[{i}].regime={s.regime!r}; expected one of {REGIMES}")
        if s.days <= 0:
            raise ConfigError(f"data.segments[{i}].days={s.days}; must be positive")
    return segs


@dataclass(frozen=True)
class _BarPlan:
    """The regime schedule spelled out per bar."""

    regime: np.ndarray
    """Regime label of every bar."""
    segment: np.ndarray
    """Position of every bar's segment in the schedule."""
    drift: np.ndarray
    """Per-bar log drift of the bar's regime."""
    vol: np.ndarray
    """Per-bar volatility of the bar's regime."""


def _bar_plan(segs: Sequence[Segment], step: pd.Timedelta, sigma: float, trend: float) -> _BarPlan:
    counts = [int(pd.Timedelta(days=s.days) / step) for s in segs]
    return _BarPlan(
        regime=np.repeat([s.regime for s in segs], counts),
        segment=np.repeat(np.arange(len(segs)), counts),
        drift=np.repeat([_DRIFT_SIGN[s.regime] * trend for s in segs], counts),
        vol=np.repeat([_VOL_MULT[s.regime] * sigma for s in segs], counts),
    )


def _log_closes(
    plan: _BarPlan,
    rng: np.random.Generator,
    initial_price: float,
    sigma: float,
    mean_reversion: float,
    signal_strength: float,
    signal_persistence: float,
) -> np.ndarray:
    """Log close of every bar: regime drift, sideways pull, planted signal and noise."""
    n = len(plan.regime)
    eps = rng.standard_normal(n)
    shocks = rng.standard_normal(n) * np.sqrt(1.0 - signal_persistence**2)
    sideways = plan.regime == "sideways"
    log_close = np.empty(n)
    zt, lp, anchor = 0.0, float(np.log(initial_price)), float(np.log(initial_price))
    # Sequential by nature (AR(1) + mean reversion); ~20k bars, so a plain loop is fine here.
    for t in range(n):
        if t > 0 and plan.segment[t] != plan.segment[t - 1]:
            anchor = lp
        pull = -mean_reversion * (lp - anchor) if sideways[t] else 0.0
        lp = lp + plan.drift[t] + pull + signal_strength * sigma * zt + plan.vol[t] * eps[t]
        log_close[t] = lp
        zt = signal_persistence * zt + shocks[t]
    return log_close


def _bars(
    log_close: np.ndarray, vol: np.ndarray, rng: np.random.Generator, initial_price: float, spread_bps: float
) -> dict[str, np.ndarray]:
    """Open, high, low, close, volume, bid and ask around the given log closes."""
    n = len(log_close)
    close = np.exp(log_close)
    open_ = np.concatenate([[initial_price], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n))) * 0.5 * vol
    half = spread_bps * 1e-4 / 2
    volume = np.exp(rng.normal(8.0, 0.3, n)) * (1 + 50 * np.abs(np.diff(log_close, prepend=log_close[0])))
    return {
        "open": open_,
        "high": np.maximum(open_, close) * np.exp(wick[0]),
        "low": np.minimum(open_, close) * np.exp(-wick[1]),
        "close": close,
        "volume": volume,
        "bid": close * (1 - half),
        "ask": close * (1 + half),
    }
