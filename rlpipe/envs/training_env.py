"""The training env of a job: the batched trading env, or the dummy plumbing env for `env=dummy`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stable_baselines3.common.vec_env import VecEnv

from rlpipe.envs.dummy import DummyEnv, DummyVecTrainingEnv
from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.envs.vec_env import VecTradingEnv


@dataclass
class TrainingEnv:
    """A seeded VecEnv to train on and the hook that tells it the training progress."""

    venv: VecEnv
    set_progress: Callable[[float], None]
    """Takes the training progress in [0, 1] (the reward curriculum); a no-op for the dummy env."""


def _ignore_progress(progress: float) -> None:
    """The dummy env has no reward curriculum."""


def make_training_env(
    market: Market,
    sim_cfg: SimConfig,
    reward_cfg: RewardConfig,
    train_windows: Sequence[tuple[int, int]],
    seed: int,
    shares: Sequence[float] | None = None,
) -> TrainingEnv:
    """Build the training VecEnv of `sim_cfg.kind` and seed it with `seed`.

    Args:
        market: prices and features normalised with training statistics.
        sim_cfg: env parameters; kind `dummy` trains on `DummyEnv` with the baseline's spaces.
        reward_cfg: the reward spec (unused by the dummy env).
        train_windows: training slices as bar ranges [lo, hi); episodes start inside them.
        seed: seeds env i with seed + i (SB3's VecEnv convention).
        shares: each training window's probability (a continued model's data mix); None: every
            admissible start equally likely.
    """
    venv: VecEnv
    set_progress: Callable[[float], None]
    if sim_cfg.kind == "dummy":
        obs_dim = market.n_features + sim_cfg.n_position_vars
        venv = DummyVecTrainingEnv([lambda: DummyEnv(obs_dim, sim_cfg.episode_bars)] * sim_cfg.n_envs)
        set_progress = _ignore_progress
    else:
        trading = VecTradingEnv(market, sim_cfg, reward_cfg, train_windows, full_infos=False, shares=shares)
        venv, set_progress = trading, trading.set_progress
    venv.seed(seed)
    return TrainingEnv(venv, set_progress)
