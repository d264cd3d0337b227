"""Device choice, seeding and the direct deterministic policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO

from rlpipe.agents.setup import deterministic_policy, resolve_device
from rlpipe.envs.dummy import DummyEnv
from rlpipe.errors import ConfigError


def test_auto_takes_cuda_only_when_present():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_key():
    with pytest.raises(ConfigError, match="device=cuda"):
        resolve_device("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ConfigError, match="device='tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize("algo", [PPO, A2C, DQN])
def test_direct_policy_matches_sb3_predict(algo):
    model = algo("MlpPolicy", DummyEnv(obs_dim=6), seed=3, device="cpu")
    obs = np.random.default_rng(0).uniform(-3, 3, (256, 6)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(deterministic_policy(model)(obs), expected)
