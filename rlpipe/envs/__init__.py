"""Trading environments: one batched market simulator, viewed as a gymnasium env or an SB3 VecEnv."""

from rlpipe.envs.market import Market, make_market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import BatchSim, SimConfig

__all__ = ["BatchSim", "Market", "RewardConfig", "SimConfig", "make_market"]
