"""The simulator's parameters (config group `env`): values and their checks, without numpy or the
compiled kernels, so that the CLI checks them before anything heavy is imported (`envs.sim` runs them)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rlpipe.envs.layout import layout_of, position_vars
from rlpipe.errors import ConfigError


@dataclass
class SimConfig:
    """Environment parameters (config group `env`)."""

    kind: str = "management"
    """'baseline' (5 position vars), 'management' (7 management vars) or 'dummy' (train on DummyEnv)."""
    n_envs: int = 16
    """Environments stepped together during training."""
    stake: float = 0.1
    """Fraction of equity committed by one fill."""
    max_stake: float = 1.0
    """Cap on the total open stake (fraction of equity at entry)."""
    close_mode: str = "all"
    """What an opposite fill closes: 'all' open slots or the oldest 'one'."""
    maker_fee: float = 0.0002
    """Fee rate on maker fills; negative is a rebate."""
    taker_fee: float = 0.0006
    """Fee rate on the taker close at the end of an episode."""
    episode_bars: int = 720
    """Mean episode length in bars."""
    episode_bars_std: float = 0.0
    """Standard deviation of the episode length (0: fixed length)."""
    reset_margin_bars: int = 24
    """Episodes never start closer than this (plus their length) to a slice end."""
    random_initial_position: float = 0.0
    """Probability that an episode starts holding one stake on a random side."""
    unrealised_scale: float = 20.0
    """Observation scale of unrealised PnL (fraction): 5% -> 1.0 at the default."""
    hours_scale: float = 48.0
    """Observation scale of durations in hours: 48 h -> 1.0 (clipped at 3)."""

    def __post_init__(self) -> None:
        layout_of(self.kind)  # an unknown kind is refused there, the one place that maps kinds
        if self.close_mode not in ("all", "one"):
            raise ConfigError(f"env.close_mode={self.close_mode!r}; expected all or one")
        if not 0 < self.stake <= self.max_stake:
            raise ConfigError(f"env.stake={self.stake} must be in (0, env.max_stake={self.max_stake}]")
        if self.n_envs < 1 or self.episode_bars < 2:
            raise ConfigError("env.n_envs must be >= 1 and env.episode_bars >= 2")

    @property
    def slots(self) -> int:
        return math.floor(self.max_stake / self.stake + 1e-9)

    @property
    def n_position_vars(self) -> int:
        """Width of the position part of the observation (see `rlpipe.envs.layout`)."""
        return len(position_vars(self.kind))
