"""A policy network stored as weights + architecture JSON: the same actions after a round trip, no pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.setup import deterministic_policy
from rlpipe.envs.dummy import DummyEnv
from rlpipe.errors import PolicyError
from rlpipe.policy.network import ARCHITECTURE, WEIGHTS, load_policy_net, save_policy_net
from tests.support.policies import Payload

OBS_DIM = 16


def _agent(cls, **kwargs):
    env = DummyVecEnv([lambda: DummyEnv(OBS_DIM, episode_bars=32)])
    agent = cls("MlpPolicy", env, seed=3, policy_kwargs={"net_arch": [32, 32]}, **kwargs)
    agent.learn(64)
    return agent


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [(PPO, {"n_steps": 32, "batch_size": 32}), (A2C, {"n_steps": 8}), (DQN, {"learning_starts": 0})],
)
def test_rebuilt_network_acts_exactly_like_the_trained_agent(cls, kwargs, tmp_path):
    agent = _agent(cls, **kwargs)
    paths = save_policy_net(agent, tmp_path)
    assert sorted(p.name for p in paths) == [ARCHITECTURE, WEIGHTS]
    net = load_policy_net(tmp_path)
    obs = np.random.default_rng(0).uniform(-3, 3, (2000, OBS_DIM)).astype(np.float32)
    expected = deterministic_policy(agent)(obs)
    assert len(np.unique(expected)) > 1  # a policy that always answers the same would prove little
    np.testing.assert_array_equal(net.act(obs), expected)
    arch = json.loads((tmp_path / ARCHITECTURE).read_text())
    assert arch["algo"] == cls.__name__ and arch["observation_space"]["shape"] == [OBS_DIM]
    assert arch["action_space"]["n"] == 3 and arch["policy_kwargs"]["net_arch"] == [32, 32]


def test_a_pickle_payload_in_the_weights_is_refused_and_never_runs(tmp_path):
    save_policy_net(_agent(PPO, n_steps=32, batch_size=32), tmp_path)
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Payload(marker))
    pickle.loads(payload)  # the payload is live: plain unpickling runs it
    assert marker.exists()
    marker.unlink()
    torch.save({"mlp_extractor.policy_net.0.weight": Payload(marker)}, tmp_path / WEIGHTS)
    with pytest.raises(PolicyError, match=f"{WEIGHTS}: not a plain tensor state_dict, refused"):
        load_policy_net(tmp_path)
    assert not marker.exists()


def test_an_architecture_outside_the_allow_list_is_refused(tmp_path):
    save_policy_net(_agent(PPO, n_steps=32, batch_size=32), tmp_path)
    arch_path = tmp_path / ARCHITECTURE
    arch = json.loads(arch_path.read_text())
    for key, value, message in [
        ("algo", "SAC", "algo 'SAC' / policy 'ActorCriticPolicy' is not in the allow-list"),
        ("policy_kwargs", {**arch["policy_kwargs"], "activation_fn": "os.system"}, "cannot build a PPO"),
        (
            "policy_kwargs",
            {**arch["policy_kwargs"], "features_extractor_class": "X"},
            "unknown policy keywords",
        ),
    ]:
        arch_path.write_text(json.dumps({**arch, key: value}))
        with pytest.raises(PolicyError, match=message):
            load_policy_net(tmp_path)


def test_weights_of_another_shape_are_refused(tmp_path):
    save_policy_net(_agent(PPO, n_steps=32, batch_size=32), tmp_path)
    state = torch.load(tmp_path / WEIGHTS, weights_only=True)
    state["action_net.weight"] = torch.zeros(5, 32)
    torch.save(state, tmp_path / WEIGHTS)
    with pytest.raises(PolicyError, match=f"{WEIGHTS}: does not fit {ARCHITECTURE}"):
        load_policy_net(tmp_path)
