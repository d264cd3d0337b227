"""The training env of a job: seeded, of the configured kind, and told the training progress."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlpipe.data.data_config import Segment
from rlpipe.data.features import fit_stats, normalise, raw_features
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.envs.market import Market, make_market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.envs.training_env import TrainingEnv, make_training_env
from rlpipe.envs.vec_env import VecTradingEnv

WINDOWS = [(48, 250), (300, 480)]
# Tight limits, so the time penalties fire within a few steps of random play.
SHAPED = RewardConfig(
    kind="shaped",
    hold_limit_hours=3,
    hold_penalty=0.5,
    flat_limit_hours=2,
    flat_penalty=0.25,
    terminal_penalty=1.0,
    curriculum_rate=1.0,
)


@pytest.fixture(scope="module")
def market() -> Market:
    df = make_synthetic_market(seed=3, segments=[Segment("bull", 10), Segment("bear", 10)])
    raw = raw_features(df)
    mask = np.zeros(len(df), bool)
    for lo, hi in WINDOWS:
        mask[lo:hi] = True
    return make_market(df, normalise(raw, fit_stats(raw, mask)))


def sim_cfg(kind: str) -> SimConfig:
    return SimConfig(kind=kind, n_envs=4, episode_bars=20, reset_margin_bars=4, max_stake=0.5)


def rollout(env: TrainingEnv, steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Reset observations and the rewards of `steps` seeded random steps."""
    obs = env.venv.reset()
    actions = np.random.default_rng(0).integers(0, 3, (steps, env.venv.num_envs))
    return obs, np.array([env.venv.step(a)[1] for a in actions])


def test_dummy_kind_trains_on_seeded_dummy_envs_with_the_baseline_spaces(market: Market) -> None:
    env = make_training_env(market, sim_cfg("dummy"), SHAPED, WINDOWS, seed=5)
    assert isinstance(env.venv, DummyVecEnv)
    assert env.venv.num_envs == 4
    assert env.venv.observation_space.shape == (market.n_features + 5,)
    obs, rewards = rollout(env)
    again_obs, again_rewards = rollout(make_training_env(market, sim_cfg("dummy"), SHAPED, WINDOWS, seed=5))
    other_obs, _ = rollout(make_training_env(market, sim_cfg("dummy"), SHAPED, WINDOWS, seed=6))
    assert np.array_equal(obs, again_obs) and np.array_equal(rewards, again_rewards)
    assert not np.array_equal(obs, other_obs)
    assert set(np.unique(rewards).tolist()) == {0.0, 1.0}  # the dummy's reward: no curriculum


def test_dummy_env_ignores_the_training_progress(market: Market) -> None:
    early = make_training_env(market, sim_cfg("dummy"), SHAPED, WINDOWS, seed=5)
    late = make_training_env(market, sim_cfg("dummy"), SHAPED, WINDOWS, seed=5)
    assert late.set_progress(1.0) is None
    assert np.array_equal(rollout(early)[1], rollout(late)[1])


@pytest.mark.parametrize("kind", ["baseline", "management"])
def test_trading_kinds_train_on_a_seeded_batched_env_without_diagnostic_infos(
    market: Market, kind: str
) -> None:
    env = make_training_env(market, sim_cfg(kind), SHAPED, WINDOWS, seed=11)
    assert isinstance(env.venv, VecTradingEnv) and isinstance(env.venv, VecEnv)
    assert env.venv.num_envs == 4 and env.venv.full_infos is False
    assert env.venv.observation_space.shape == (market.n_features + sim_cfg(kind).n_position_vars,)
    obs, rewards = rollout(env)
    again_obs, again_rewards = rollout(make_training_env(market, sim_cfg(kind), SHAPED, WINDOWS, seed=11))
    other_obs, _ = rollout(make_training_env(market, sim_cfg(kind), SHAPED, WINDOWS, seed=12))
    assert np.array_equal(obs, again_obs) and np.array_equal(rewards, again_rewards)
    assert not np.array_equal(obs, other_obs)


def test_set_progress_moves_the_shaped_reward_along_its_curriculum(market: Market) -> None:
    def rewards_at(progress: float | None, reward: RewardConfig = SHAPED) -> np.ndarray:
        env = make_training_env(market, sim_cfg("management"), reward, WINDOWS, seed=11)
        if progress is not None:
            env.set_progress(progress)
        return rollout(env)[1]

    plain = rewards_at(None, RewardConfig(kind="pnl_fees"))
    start, half, full = rewards_at(0.0), rewards_at(0.5), rewards_at(1.0)
    assert np.array_equal(rewards_at(None), start)  # training starts at progress 0
    assert np.array_equal(start, plain)  # no penalty at strength 0
    penalties_half, penalties_full = half - plain, full - plain
    assert (penalties_full <= 1e-6).all()
    # at full strength: a hold penalty of 0.5 and a flat penalty of 0.25 per step beyond their limits
    assert (
        np.isclose(penalties_full, -0.5, atol=1e-5).any()
        and np.isclose(penalties_full, -0.25, atol=1e-5).any()
    )
    # rate 1: strength follows progress, so half way the penalties are half as strong
    assert penalties_half == pytest.approx(penalties_full / 2, abs=1e-5)
