"""The single gymnasium trading env: a thin view over a batch of one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlpipe.envs.episodes import EpisodeSampler
from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import BatchSim, StepResult
from rlpipe.envs.sim_config import SimConfig


def observation_space(market: Market, cfg: SimConfig) -> gym.spaces.Box:
    """Bounded features + position state."""
    dim = market.n_features + cfg.n_position_vars
    return gym.spaces.Box(-3.0, 3.0, shape=(dim,), dtype=np.float32)


def info_rows(sim: BatchSim, res: StepResult) -> tuple[list[str], list[list[float]]]:
    """Diagnostics as (keys, one row of values per env), shared by both env views."""
    arrays = {**sim.info_arrays(), "step_fills": res.fills.astype(np.float64)}
    arrays.update({f"reward_{k}": v for k, v in res.terms.items()})
    return list(arrays), np.column_stack(list(arrays.values())).tolist()


class TradingEnv(gym.Env):
    """Maker-only trading on one market: Discrete(3) = hold, maker long, maker short."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        market: Market,
        cfg: SimConfig,
        reward: RewardConfig,
        windows: Sequence[tuple[int, int]],
    ) -> None:
        self.sim = BatchSim(market, cfg, reward, 1)
        self.sampler = EpisodeSampler(windows, cfg)
        self.observation_space = observation_space(market, cfg)
        self.action_space = gym.spaces.Discrete(3)
        self.progress = 0.0  # training progress in [0, 1], for the reward curriculum

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        start, end, side = self.sampler.sample(self.np_random)
        self.sim.reset_rows(np.zeros(1, np.int64), np.array([start]), np.array([end]), np.array([side]))
        return self._get_obs(), self._get_info()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        res = self.sim.step(np.array([int(action)]), self.progress)
        keys, rows = info_rows(self.sim, res)
        return (
            self._get_obs(),
            float(res.reward[0]),
            bool(res.terminated[0]),
            bool(res.truncated[0]),
            dict(zip(keys, rows[0], strict=True)),
        )

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] for the reward curriculum, passed to every later step."""
        self.progress = progress

    def _get_obs(self) -> np.ndarray:
        return self.sim.observe()[0]

    def _get_info(self) -> dict[str, float]:
        return {k: float(v[0]) for k, v in self.sim.info_arrays().items()}
