"""Training callbacks: progress handed to the env at every rollout, SB3 scalars kept as metric points."""

from __future__ import annotations

from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.training_callbacks import ProgressCallback, history_logger
from rlpipe.envs.dummy import DummyEnv


def test_progress_is_handed_over_at_each_rollout_and_scalars_are_kept():
    seen: list[float] = []
    model = PPO(
        "MlpPolicy", DummyVecEnv([lambda: DummyEnv(obs_dim=4)] * 2), n_steps=16, batch_size=32, seed=0
    )
    logger, history = history_logger()
    model.set_logger(logger)
    model.learn(total_timesteps=128, callback=ProgressCallback(128, False, "t", seen.append))
    assert seen == [0.0, 0.25, 0.5, 0.75]  # 4 rollouts of 2 envs x 16 steps, progress at each start
    keys = {k for k, _, _ in history.points}  # SB3's own keys: the job adds its curve prefix
    assert {"time/fps", "train/loss"} <= keys and all(k.count("/") == 1 for k in keys)
    assert {s for k, _, s in history.points if k == "time/fps"} == {32, 64, 96, 128}
