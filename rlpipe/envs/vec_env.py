"""`VecTradingEnv`: N trading envs stepped as one numpy batch, with SB3's VecEnv semantics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from rlpipe.envs.episodes import EpisodeSampler
from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import BatchSim
from rlpipe.envs.sim_config import SimConfig
from rlpipe.envs.trading_env import info_rows, observation_space


class VecTradingEnv(VecEnv):
    """Batched trading envs; env i draws its episodes from its own generator (seed + i).

    Auto-reset follows SB3: a finished env's last observation goes to
    `infos[i]["terminal_observation"]`, and the returned observation is the new episode's first.
    Episode return and length go to `infos[i]["episode"]` like SB3's Monitor wrapper.

    With `full_infos=False` (training), per-env info dicts carry only what SB3 reads at episode
    ends; building 64 diagnostic dicts per step would cost more than the simulation itself. The
    diagnostics stay available as arrays through `info_arrays()`.
    """

    def __init__(
        self,
        market: Market,
        cfg: SimConfig,
        reward: RewardConfig,
        windows: Sequence[tuple[int, int]],
        n_envs: int | None = None,
        full_infos: bool = True,
        shares: Sequence[float] | None = None,
    ) -> None:
        n = n_envs or cfg.n_envs
        self.sim = BatchSim(market, cfg, reward, n)
        self.sampler = EpisodeSampler(windows, cfg, shares)
        self.rngs = [seeding.np_random(None)[0] for _ in range(n)]
        self.render_mode = None
        self.full_infos = full_infos
        self.progress = 0.0  # training progress in [0, 1], for the reward curriculum
        # Steps where no env finishes return this same list of empty dicts (never written to).
        self._no_infos: list[dict[str, Any]] = [{} for _ in range(n)]
        super().__init__(n, observation_space(market, cfg), gym.spaces.Discrete(3))
        self._actions = np.zeros(n, np.int64)
        self._ep_return = np.zeros(n)
        self._ep_start = np.zeros(n, np.int64)  # step count at each env's episode start
        self._steps = 0
        self._t0 = time.time()

    def _start(self, rows: np.ndarray) -> None:
        draws = np.array([self.sampler.sample(self.rngs[i]) for i in rows], np.int64).reshape(-1, 3)
        self.sim.reset_rows(rows, draws[:, 0], draws[:, 1], draws[:, 2])
        self._ep_return[rows] = 0.0
        self._ep_start[rows] = self._steps

    def reset(self) -> np.ndarray:
        for i, seed in enumerate(self._seeds):
            if seed is not None:
                self.rngs[i] = seeding.np_random(seed)[0]
        self._start(np.arange(self.num_envs))
        self._reset_seeds()
        self._reset_options()
        return self.sim.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        res = self.sim.step(self._actions, self.progress)
        obs = self.sim.observe()
        infos: list[dict[str, Any]]
        if self.full_infos:
            keys, rows = info_rows(self.sim, res)
            infos = [dict(zip(keys, row, strict=True)) for row in rows]
        else:
            infos = self._no_infos
        self._ep_return += res.reward
        self._steps += 1
        done = res.done
        if done.any():
            finished = np.flatnonzero(done)
            if not self.full_infos:
                infos = [{} for _ in range(self.num_envs)]  # fresh dicts: the shared ones stay empty
            for i in finished:
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["TimeLimit.truncated"] = bool(res.truncated[i])
                infos[i]["episode"] = {
                    "r": float(self._ep_return[i]),
                    "l": int(self._steps - self._ep_start[i]),
                    "t": round(time.time() - self._t0, 6),
                }
            self._start(finished)
            obs[finished] = self.sim.observe()[finished]
        return obs, res.reward.astype(np.float32), done, infos

    def info_arrays(self) -> dict[str, np.ndarray]:
        """Diagnostics of every env as arrays (equity, PnL, fees, fills, open stake)."""
        return self.sim.info_arrays()

    def get_state(self) -> dict[str, Any]:
        """Everything the next step depends on: the simulator, each env's generator, the episode
        counters and the curriculum progress (plain arrays and values; see `set_state`)."""
        return {
            "sim": self.sim.get_state(),
            "rngs": [rng.bit_generator.state for rng in self.rngs],
            "ep_return": self._ep_return.copy(),
            "ep_start": self._ep_start.copy(),
            "steps": self._steps,
            "progress": self.progress,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Continue exactly where `get_state()` was taken (a resumed training run)."""
        self.sim.set_state(state["sim"])
        for rng, saved in zip(self.rngs, state["rngs"], strict=True):
            rng.bit_generator.state = saved
        self._ep_return[:] = state["ep_return"]
        self._ep_start[:] = state["ep_start"]
        self._steps = int(state["steps"])
        self.progress = float(state["progress"])
        self._reset_seeds()  # the generators are restored: a pending `seed()` must not redo them

    def set_progress(self, progress: float) -> None:
        """Training progress in [0, 1] for the reward curriculum, passed to every later step."""
        self.progress = progress

    def close(self) -> None:
        """Nothing to release: the simulator holds only arrays."""

    def _count(self, indices: VecEnvIndices) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * self._count(indices)
