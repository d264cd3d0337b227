"""The agent spec: the SB3 class named by config, its keywords checked, built seeded on an env."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import A2C
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.envs.dummy import DummyEnv
from rlpipe.errors import ConfigError


def env() -> DummyVecEnv:
    return DummyVecEnv([lambda: DummyEnv(obs_dim=6)] * 2)


def test_spec_builds_the_named_algorithm_with_its_keywords():
    spec = AgentSpec("stable_baselines3.A2C", {"policy": "MlpPolicy", "n_steps": 8, "learning_rate": 0.001})
    agent = spec.build(env(), seed=4, device="cpu")
    assert isinstance(agent, A2C) and agent.n_steps == 8 and agent.seed == 4 and str(agent.device) == "cpu"
    assert spec.name == "a2c" and spec.as_config() == {"_target_": "stable_baselines3.A2C", **spec.kwargs}


def test_same_seed_builds_identical_networks():
    spec = AgentSpec("stable_baselines3.PPO", {"policy": "MlpPolicy", "n_steps": 8, "batch_size": 16})
    a, b = (spec.build(env(), seed=7, device="cpu") for _ in range(2))
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_unknown_keyword_is_named():
    with pytest.raises(
        ConfigError, match=r"agent\.learnin_rate is not a parameter of stable_baselines3\.PPO"
    ):
        AgentSpec("stable_baselines3.PPO", {"policy": "MlpPolicy", "learnin_rate": 0.1}).check()


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("stable_baselines3.PPOO", "cannot be imported"),
        ("no_such_module.PPO", "cannot be imported"),
        ("collections.OrderedDict", "is not a stable-baselines3 algorithm class"),
    ],
)
def test_a_target_that_is_no_sb3_algorithm_is_refused(target, why):
    with pytest.raises(ConfigError, match=f"agent._target_='{target}' {why}"):
        AgentSpec(target, {}).check()
