"""Trading environments: one batched market simulator, viewed as a gymnasium env or an SB3 VecEnv.

Only the simulator's light parts are re-exported here. The env views (`trading_env.TradingEnv`,
`vec_env.VecTradingEnv`, `factory.make_training_env`) pull in gymnasium and stable-baselines3 (and
so torch): import them from their modules, so that importing the package (for instance for
`rlpipe.envs.layout`) does not load torch.
"""

from rlpipe.envs.layout import POSITION_VARS, position_vars
from rlpipe.envs.market import Market, make_market
from rlpipe.envs.rewards import PositionClock, RewardConfig, StepState, compute_reward
from rlpipe.envs.sim import BatchSim, SimConfig

__all__ = [
    "POSITION_VARS",
    "BatchSim",
    "Market",
    "PositionClock",
    "RewardConfig",
    "SimConfig",
    "StepState",
    "compute_reward",
    "make_market",
    "position_vars",
]
