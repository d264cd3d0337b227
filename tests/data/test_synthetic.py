"""The synthetic market: seeded, follows its regime schedule, valid, with a plantable signal."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.data_config import Segment
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.data.validation import validate_market
from rlpipe.errors import ConfigError
from tests.support.markets import regime_schedule

SHORT = [Segment("bull", 10), Segment("bear", 10), Segment("sideways", 10)]


def log_returns(df: pd.DataFrame) -> pd.Series:
    return np.log(df["close"]).diff()


def test_same_seed_gives_identical_frame() -> None:
    a = make_synthetic_market(seed=7, segments=SHORT)
    b = make_synthetic_market(seed=7, segments=SHORT)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_different_seed_gives_different_prices() -> None:
    a = make_synthetic_market(seed=7, segments=SHORT)
    b = make_synthetic_market(seed=8, segments=SHORT)
    assert a.index.equals(b.index)
    assert (a["regime"] == b["regime"]).all()
    for col in ("close", "high", "low", "volume"):
        assert not np.allclose(a[col].to_numpy(), b[col].to_numpy()), col


def test_segments_given_as_dicts_equal_segments_given_as_dataclasses() -> None:
    as_dicts = [{"regime": s.regime, "days": s.days} for s in SHORT]
    pd.testing.assert_frame_equal(
        make_synthetic_market(seed=3, segments=as_dicts),
        make_synthetic_market(seed=3, segments=SHORT),
        check_exact=True,
    )


def test_bar_count_and_stamps_follow_days_and_freq() -> None:
    df = make_synthetic_market(seed=0, segments=SHORT, start="2022-03-01", freq="4h")
    assert len(df) == 30 * 6
    assert df.index[0] == pd.Timestamp("2022-03-01", tz="UTC")
    assert (df.index[1:] - df.index[:-1] == pd.Timedelta("4h")).all()
    assert str(df.index.tz) == "UTC"


def test_regime_column_equals_the_declared_schedule() -> None:
    segments = [Segment("sideways", 3), Segment("bull", 5), Segment("bear", 2), Segment("bull", 4)]
    df = make_synthetic_market(seed=1, segments=segments, start="2021-06-01", freq="1h")
    schedule = regime_schedule(segments, "2021-06-01", "1h")

    assert [r for r, _, _ in schedule] == ["sideways", "bull", "bear", "bull"]
    assert schedule[0][1] == df.index[0]
    assert schedule[-1][2] == df.index[-1]
    expected = pd.Series("", index=df.index)
    for regime, first, last in schedule:
        expected.loc[first:last] = regime
    assert (df["regime"] == expected).all()
    # Segments are contiguous and each has days * 24 hourly bars.
    for (_, _, last), (_, nxt, _) in pairwise(schedule):
        assert nxt - last == pd.Timedelta("1h")
    for seg, (_, first, last) in zip(segments, schedule, strict=True):
        assert len(df.loc[first:last]) == seg.days * 24


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mean_log_return_orders_bull_above_sideways_above_bear(seed: int) -> None:
    # A long schedule (3 x 30 days per regime) and a trend large against the noise, so the
    # ordering is a property of the schedule, not of the seed.
    segments = [Segment(r, 30) for r in ("bull", "sideways", "bear") * 3]
    df = make_synthetic_market(seed=seed, segments=segments, trend=5e-4, signal_strength=0.0)
    mean = log_returns(df).groupby(df["regime"]).mean()
    assert mean["bull"] > mean["sideways"] > mean["bear"]
    assert mean["bull"] > 2.5e-4
    assert mean["bear"] < -2.5e-4
    assert abs(mean["sideways"]) < 1e-4


def test_sideways_segments_return_near_their_starting_level() -> None:
    segments = [Segment(r, 20) for r in ("bull", "sideways", "bear", "sideways")]
    df = make_synthetic_market(seed=5, segments=segments, signal_strength=0.0)
    logc = np.log(df["close"])
    for regime, first, last in regime_schedule(segments, "2021-01-01", "1h"):
        if regime == "sideways":
            anchor = logc.loc[:first].iloc[-2]  # the last close before the segment
            assert abs(logc.loc[last] - anchor) < 0.15


@pytest.mark.parametrize("seed", [0, 11])
def test_synthetic_market_passes_validation(seed: int) -> None:
    df = make_synthetic_market(seed=seed, segments=SHORT)
    validate_market(df, "synthetic market", pd.Timedelta("1h"))
    assert (df["low"] <= np.minimum(df["open"], df["close"])).all()
    assert (df["high"] >= np.maximum(df["open"], df["close"])).all()
    assert (df["bid"] < df["close"]).all()
    assert (df["ask"] > df["close"]).all()
    assert (df["volume"] > 0).all()
    assert (df["open"].to_numpy()[1:] == df["close"].to_numpy()[:-1]).all()


def test_planted_signal_changes_returns_by_a_persistent_drift() -> None:
    # Same seed, same noise: in a bull-only market (no mean reversion), the return difference
    # between signal strengths is exactly strength * sigma * z_t, a persistent AR(1) drift.
    segs = [Segment("bull", 30)]
    r0 = log_returns(make_synthetic_market(seed=2, segments=segs, signal_strength=0.0)).to_numpy()[1:]
    r1 = log_returns(make_synthetic_market(seed=2, segments=segs, signal_strength=0.1)).to_numpy()[1:]
    r2 = log_returns(make_synthetic_market(seed=2, segments=segs, signal_strength=0.2)).to_numpy()[1:]
    d1, d2 = r1 - r0, r2 - r0
    assert np.abs(d1).max() > 1e-4  # the signal does change returns
    np.testing.assert_allclose(d2, 2 * d1, atol=1e-12)  # linear in the strength
    lag1 = np.corrcoef(d1[:-1], d1[1:])[0, 1]
    assert lag1 > 0.9  # persistence 0.98 by default


def test_zero_signal_strength_removes_the_momentum_edge() -> None:
    segs = [Segment("bull", 60)]

    def momentum_corr(strength: float) -> float:
        r = log_returns(make_synthetic_market(seed=0, segments=segs, signal_strength=strength)).to_numpy()[1:]
        past = pd.Series(r).rolling(24).sum().to_numpy()
        return float(np.corrcoef(past[24:-1], r[25:])[0, 1])

    assert momentum_corr(0.5) > 0.2
    assert abs(momentum_corr(0.0)) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "key", "message"),
    [
        (
            {"segments": [Segment("boom", 5)]},
            "data.segments[0].regime",
            "data.segments[0].regime='boom'; expected one of ('bull', 'bear', 'sideways')",
        ),
        (
            {"segments": [Segment("bull", 5), Segment("bear", 0)]},
            "data.segments[1].days",
            "data.segments[1].days=0; must be positive",
        ),
        (
            {"segments": [{"regime": "bull", "days": -2}]},
            "data.segments[0].days",
            "data.segments[0].days=-2; must be positive",
        ),
        (
            {"segments": SHORT, "signal_persistence": 1.0},
            "data.signal_persistence",
            "data.signal_persistence=1.0; must lie in [0, 1)",
        ),
        (
            {"segments": SHORT, "signal_persistence": -0.1},
            "data.signal_persistence",
            "data.signal_persistence=-0.1; must lie in [0, 1)",
        ),
    ],
)
def test_bad_synthetic_config_names_the_key(kwargs: dict, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        make_synthetic_market(seed=0, **kwargs)
    assert key in str(err.value)
    assert str(err.value) == message


# ------------------------------------------------------------------------------ oracles
def test_a_bull_market_follows_the_documented_model_draw_for_draw() -> None:
    """Recompute a bull-only market from the seed: the documented model, in the generator's draw order.

    log close_t = log close_(t-1) + trend + strength * sigma * z_t + sigma * eps_t, with z an AR(1)
    (z_0 = 0, z_t = persistence * z_(t-1) + sqrt(1 - persistence^2) * shock_(t-1)); then |normal|
    wicks of half a bar's volatility, and a log-normal volume that rises with the bar's move.
    """
    n, sigma, trend, strength, rho, spread_bps = 48, 0.004, 2e-4, 0.3, 0.9, 4.0
    df = make_synthetic_market(
        seed=11,
        segments=[Segment("bull", 2)],
        initial_price=50.0,
        sigma=sigma,
        trend=trend,
        signal_strength=strength,
        signal_persistence=rho,
        spread_bps=spread_bps,
    )
    rng = np.random.default_rng(11)
    eps = rng.standard_normal(n)
    shocks = rng.standard_normal(n) * np.sqrt(1 - rho**2)
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = rho * z[t - 1] + shocks[t - 1]
    log_close = np.log(50.0) + np.cumsum(trend + strength * sigma * z + sigma * eps)
    close = np.exp(log_close)
    open_ = np.concatenate([[50.0], close[:-1]])
    wick = np.abs(rng.standard_normal((2, n))) * 0.5 * sigma
    move = np.abs(np.diff(log_close, prepend=log_close[0]))
    volume = np.exp(rng.normal(8.0, 0.3, n)) * (1 + 50 * move)
    expected = {
        "open": open_,
        "high": np.maximum(open_, close) * np.exp(wick[0]),
        "low": np.minimum(open_, close) * np.exp(-wick[1]),
        "close": close,
        "volume": volume,
        "bid": close * (1 - 2e-4),
        "ask": close * (1 + 2e-4),
    }
    for col, values in expected.items():
        np.testing.assert_allclose(df[col].to_numpy(), values, rtol=1e-12, err_msg=col)
    assert list(df.columns) == [*expected, "regime"] and set(df["regime"]) == {"bull"}


def test_full_mean_reversion_pins_sideways_closes_to_the_segment_anchor() -> None:
    # With mean_reversion=1 and no signal, every sideways bar starts from its segment's anchor (the
    # last close before the segment): log close_t = anchor + 0.8 * sigma * eps_t, exactly.
    segments = [Segment("bull", 1), Segment("sideways", 1)]
    df = make_synthetic_market(seed=4, segments=segments, sigma=0.01, mean_reversion=1.0, signal_strength=0.0)
    eps = np.random.default_rng(4).standard_normal(48)
    logc = np.log(df["close"].to_numpy())
    anchor = logc[23]
    np.testing.assert_allclose(logc[24:], anchor + 0.8 * 0.01 * eps[24:], rtol=0, atol=1e-12)
