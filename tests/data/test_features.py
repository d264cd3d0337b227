"""Features see only the past, and normalisation is fitted on training bars only.

The leakage tests perturb every bar after t and require the features, and the observations of
both env kinds, up to t to be bit-identical.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.data_config import Segment
from rlpipe.data.features import FeatureStats, fit_stats, normalise, raw_features
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.envs.market import make_market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import BatchSim
from rlpipe.envs.sim_config import SimConfig
from rlpipe.envs.trading_env import TradingEnv
from rlpipe.types import OBSERVATION_CLIP

PRICES = ["open", "high", "low", "close", "bid", "ask"]
T = 150  # the bar up to which everything must be unchanged


@pytest.fixture(scope="module")
def market_df() -> pd.DataFrame:
    return make_synthetic_market(
        seed=3, segments=[Segment("bull", 5), Segment("bear", 5), Segment("sideways", 5)]
    )


@pytest.fixture(scope="module")
def train_mask(market_df: pd.DataFrame) -> np.ndarray:
    mask = np.zeros(len(market_df), bool)
    mask[:120] = True  # training bars all lie before T
    return mask


def perturb_after(df: pd.DataFrame, t: int, seed: int) -> pd.DataFrame:
    """Every bar after t: prices scaled by a random factor per bar, volumes redrawn."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    n_after = len(df) - t - 1
    factor = rng.uniform(0.5, 1.5, n_after)
    for col in PRICES:
        values = out[col].to_numpy(copy=True)
        values[t + 1 :] *= factor
        out[col] = values
    volume = out["volume"].to_numpy(copy=True)
    volume[t + 1 :] = rng.uniform(1.0, 1e5, n_after)
    out["volume"] = volume
    return out


# ------------------------------------------------------------------------------ leakage
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_up_to_t_ignore_any_change_after_t(
    market_df: pd.DataFrame, train_mask: np.ndarray, seed: int
) -> None:
    perturbed = perturb_after(market_df, T, seed)
    raw, raw_p = raw_features(market_df), raw_features(perturbed)
    stats = fit_stats(raw, train_mask)

    assert np.array_equal(raw.to_numpy()[: T + 1], raw_p.to_numpy()[: T + 1], equal_nan=True)
    z, z_p = normalise(raw, stats), normalise(raw_p, stats)
    assert np.array_equal(z[: T + 1], z_p[: T + 1])
    # The perturbation is real: the features after t do change.
    assert not np.array_equal(z[T + 1 :], z_p[T + 1 :])
    assert (np.abs(z[T + 1 :] - z_p[T + 1 :]) > 1e-3).mean() > 0.5


def test_stats_fitted_on_past_training_bars_ignore_the_future(
    market_df: pd.DataFrame, train_mask: np.ndarray
) -> None:
    perturbed = perturb_after(market_df, T, seed=9)
    assert fit_stats(raw_features(market_df), train_mask) == fit_stats(raw_features(perturbed), train_mask)


def _observations_batch(df: pd.DataFrame, stats: FeatureStats, kind: str, actions: np.ndarray) -> list:
    market = make_market(df, normalise(raw_features(df), stats))
    sim = BatchSim(market, SimConfig(kind=kind, n_envs=3, maker_fee=-0.0001), RewardConfig(), 3)
    starts = np.array([60, 100, 130])
    sim.reset_rows(np.arange(3), starts, starts + 200, np.array([0, 1, -1]))
    record: list[tuple[np.ndarray, ...]] = [(sim.observe().copy(), sim.equity.copy())]
    for a in actions:  # steps until every row stands at bar T
        res = sim.step(a)
        record.append((sim.observe().copy(), sim.equity.copy(), res.reward.copy(), res.fills.copy()))
    assert (sim.t == starts + len(actions)).all()
    return record


@pytest.mark.parametrize("kind", ["baseline", "management"])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_sim_observations_up_to_t_ignore_any_change_after_t(
    market_df: pd.DataFrame, train_mask: np.ndarray, kind: str, seed: int
) -> None:
    stats = fit_stats(raw_features(market_df), train_mask)
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 3, size=(T - 130, 3))  # the latest row (start 130) reaches T
    original = _observations_batch(market_df, stats, kind, actions)
    perturbed = _observations_batch(perturb_after(market_df, T, seed + 100), stats, kind, actions)
    assert len(original) == len(perturbed) == T - 130 + 1
    for step, (a, b) in enumerate(zip(original, perturbed, strict=True)):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y), f"step {step}"
    # The policy traded, so position state is part of what stayed identical.
    assert sum(int(r[3].sum()) for r in original[1:]) > 0


@pytest.mark.parametrize("kind", ["baseline", "management"])
def test_trading_env_observations_up_to_t_ignore_any_change_after_t(
    market_df: pd.DataFrame, train_mask: np.ndarray, kind: str
) -> None:
    stats = fit_stats(raw_features(market_df), train_mask)
    cfg = SimConfig(kind=kind, n_envs=1, episode_bars=60, reset_margin_bars=4, random_initial_position=0.5)
    windows = [(50, 200)]

    def make_env(df: pd.DataFrame) -> TradingEnv:
        return TradingEnv(make_market(df, normalise(raw_features(df), stats)), cfg, RewardConfig(), windows)

    env = make_env(market_df)
    obs0, _ = env.reset(seed=21)
    start = int(env.sim.start[0])
    t = start + 25  # well inside the 60-bar episode
    actions = np.random.default_rng(4).integers(0, 3, t - start)

    env_p = make_env(perturb_after(market_df, t, seed=5))
    obs0_p, _ = env_p.reset(seed=21)
    assert int(env_p.sim.start[0]) == start
    assert np.array_equal(obs0, obs0_p)
    fills = 0
    for a in actions:
        obs, rew, term, trunc, info = env.step(int(a))
        obs_p, rew_p, term_p, trunc_p, info_p = env_p.step(int(a))
        assert np.array_equal(obs, obs_p)
        assert (rew, term, trunc) == (rew_p, term_p, trunc_p)
        assert info == info_p
        fills += int(info["step_fills"])
    assert int(env.sim.t[0]) == t
    assert fills > 0


# ------------------------------------------------------------------------------ normalisation
def test_stats_are_fitted_on_training_rows_only(market_df: pd.DataFrame, train_mask: np.ndarray) -> None:
    raw = raw_features(market_df)
    stats = fit_stats(raw, train_mask)
    changed = raw.copy()
    changed.iloc[~train_mask] = 1e6  # everything outside training is garbage
    assert fit_stats(changed, train_mask) == stats
    # ... and the statistics are those of the training rows (NaN warm-up rows ignored).
    train = raw.to_numpy()[train_mask]
    np.testing.assert_allclose(stats.mean, np.nanmean(train, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, np.nanstd(train, axis=0), rtol=1e-12)
    assert fit_stats(raw, ~train_mask) != stats


def test_normalise_is_z_score_clipped_to_three_with_nan_and_inf_as_zero() -> None:
    raw = pd.DataFrame({"a": [0.0, 2.0, 4.0, 100.0, -100.0, np.nan, np.inf], "b": [1.0] * 7})
    stats = FeatureStats(("a", "b"), (2.0, 1.0), (2.0, 0.5))
    z = normalise(raw, stats)
    assert z.dtype == np.float32
    np.testing.assert_array_equal(z[:, 0], np.array([-1.0, 0.0, 1.0, 3.0, -3.0, 0.0, 0.0], np.float32))
    np.testing.assert_array_equal(z[:, 1], np.zeros(7, np.float32))
    assert OBSERVATION_CLIP == 3.0


def test_normalised_market_features_lie_in_bounds_and_are_finite(market_df: pd.DataFrame) -> None:
    raw = raw_features(market_df)
    assert raw.iloc[:47].isna().any(axis=None)  # warm-up rows of the 48-bar windows
    z = normalise(raw, fit_stats(raw, np.ones(len(raw), bool)))
    assert np.isfinite(z).all()
    assert z.min() >= -3.0 and z.max() <= 3.0
    assert (z[0] == 0).sum() >= 1  # NaN in the first row became 0


def test_constant_training_column_gets_unit_sigma() -> None:
    raw = pd.DataFrame({"a": [5.0, 5.0, 5.0, 8.0], "b": [np.nan, np.nan, np.nan, 1.0]})
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        stats = fit_stats(raw, np.array([True, True, True, False]))
    assert stats.mean == (5.0, 0.0) and stats.std == (1.0, 1.0)
    np.testing.assert_array_equal(normalise(raw, stats)[:, 0], np.array([0, 0, 0, 3], np.float32))


def test_feature_stats_roundtrip_through_dict_and_json(
    market_df: pd.DataFrame, train_mask: np.ndarray
) -> None:
    raw = raw_features(market_df)
    stats = fit_stats(raw, train_mask)
    d = stats.to_dict()
    assert set(d) == {"columns", "mean", "std"}
    assert FeatureStats.from_dict(d) == stats
    back = FeatureStats.from_dict(json.loads(json.dumps(d)))
    assert back == stats
    assert np.array_equal(normalise(raw, back), normalise(raw, stats))


def test_normalise_refuses_columns_that_differ_from_the_fitted_ones(
    market_df: pd.DataFrame,
) -> None:
    raw = raw_features(market_df)
    stats = fit_stats(raw, np.ones(len(raw), bool))
    with pytest.raises(ValueError, match="differ from fitted"):
        normalise(raw[list(reversed(raw.columns))], stats)
