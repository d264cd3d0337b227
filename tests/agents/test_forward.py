"""The NumPy forward pass: SB3's deterministic actions without torch's per-call dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO

from rlpipe.agents.forward import numpy_forward
from rlpipe.agents.setup import deterministic_policy
from rlpipe.envs.dummy import DummyEnv

NETWORKS = [
    (PPO, {}),
    (A2C, {}),
    (DQN, {}),
    (PPO, {"net_arch": {"pi": [32, 16], "vf": [8]}, "activation_fn": torch.nn.ReLU}),
    (DQN, {"net_arch": [16, 16, 16], "activation_fn": torch.nn.Tanh}),
]


def _spread(model) -> None:
    """Weights far from their initialisation, so that actions spread over every choice."""
    with torch.no_grad():
        for p in model.policy.parameters():
            p.mul_(3.0).add_(torch.randn_like(p) * 0.3)


@pytest.mark.parametrize(("algo", "kwargs"), NETWORKS)
def test_numpy_actions_are_sb3s(algo, kwargs):
    model = algo("MlpPolicy", DummyEnv(obs_dim=9), seed=5, device="cpu", policy_kwargs=kwargs)
    torch.manual_seed(0)
    _spread(model)
    forward = numpy_forward(model.policy)
    assert forward is not None
    obs = np.random.default_rng(1).uniform(-3, 3, (20_000, 9)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    assert len(set(expected.tolist())) == 3  # the comparison covers every action
    np.testing.assert_array_equal(forward(obs), expected)
    np.testing.assert_array_equal(forward(obs[:1]), expected[:1])  # one row


def test_the_policy_acts_with_the_weights_it_has_when_asked():
    model = PPO("MlpPolicy", DummyEnv(obs_dim=4), seed=2, device="cpu")
    obs = np.random.default_rng(0).uniform(-3, 3, (2000, 4)).astype(np.float32)
    before = deterministic_policy(model)
    first = before(obs)
    torch.manual_seed(1)
    _spread(model)  # training moves the weights in place
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(deterministic_policy(model)(obs), expected)
    assert not np.array_equal(expected, first)


def test_an_unknown_network_keeps_torch():
    kwargs = {"activation_fn": torch.nn.ELU}
    model = PPO("MlpPolicy", DummyEnv(obs_dim=4), seed=2, device="cpu", policy_kwargs=kwargs)
    assert numpy_forward(model.policy) is None
    obs = np.random.default_rng(0).uniform(-3, 3, (500, 4)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(deterministic_policy(model)(obs), expected)
