"""`env=dummy`: a trivial env with the trading env's spaces, to smoke-test the RL plumbing."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv


class DummyEnv(gym.Env):
    """Random bounded observations; reward 1 when the action matches the sign of obs[0].

    Long (1) is right when obs[0] > 0, short (2) when obs[0] < 0; hold earns 0. It is learnable
    in a few hundred steps, which is all a smoke test needs to see.
    """

    metadata = {"render_modes": []}

    def __init__(self, obs_dim: int, episode_bars: int = 64) -> None:
        self.observation_space = gym.spaces.Box(-3.0, 3.0, shape=(obs_dim,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(3)
        self.episode_bars = episode_bars
        self._obs = np.zeros(obs_dim, np.float32)
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._get_obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        want = 1 if self._obs[0] > 0 else 2
        reward = float(int(action) == want)
        self._t += 1
        return self._get_obs(), reward, False, self._t >= self.episode_bars, {}

    def _get_obs(self) -> np.ndarray:
        self._obs = self.np_random.uniform(-3, 3, self.observation_space.shape).astype(np.float32)
        return self._obs


class DummyVecTrainingEnv(DummyVecEnv):
    """`DummyEnv`s stepped by SB3's `DummyVecEnv`, with the resumable state the trading env has."""

    def get_state(self) -> dict[str, Any]:
        """Each env's generator, last observation and step count."""
        envs = [e.unwrapped for e in self.envs]
        return {
            "rngs": [e.np_random.bit_generator.state for e in envs],
            "obs": [e._obs.copy() for e in envs],  # type: ignore[attr-defined]
            "t": [e._t for e in envs],  # type: ignore[attr-defined]
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for e, rng, obs, t in zip(self.envs, state["rngs"], state["obs"], state["t"], strict=True):
            env = e.unwrapped
            env.np_random.bit_generator.state = rng
            env._obs, env._t = np.asarray(obs, np.float32), int(t)  # type: ignore[attr-defined]
        self._reset_seeds()
