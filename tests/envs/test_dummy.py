"""`DummyEnv`, the stand-in for `env=dummy`: the trading env's spaces and a learnable reward."""

from __future__ import annotations

import warnings
from collections.abc import Callable

from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from rlpipe.envs.dummy import DummyEnv


def _checker_warnings(fn: Callable[[], None]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    # Without gymnasium.make there is no spec to test render modes against; nothing else may warn.
    return [str(w.message) for w in caught if "render modes" not in str(w.message)]


def test_dummy_env_passes_gymnasium_and_sb3_checkers() -> None:
    env = DummyEnv(obs_dim=12, episode_bars=16)
    assert _checker_warnings(lambda: gym_check_env(env)) == []
    assert _checker_warnings(lambda: sb3_check_env(env)) == []


def test_dummy_env_rewards_the_action_matching_the_sign_of_obs0() -> None:
    env = DummyEnv(obs_dim=4, episode_bars=30)
    obs, _ = env.reset(seed=0)
    rewards = []
    for k in range(30):
        right = 1 if obs[0] > 0 else 2
        action = [right, 3 - right, 0][k % 3]
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        assert not terminated
        assert truncated == (k == 29)
    assert rewards == [1.0, 0.0, 0.0] * 10
