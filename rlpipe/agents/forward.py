"""A trained MLP policy's deterministic actions in NumPy, for backtests and the served model.

A backtest asks the policy for one batch of actions per bar: a few thousand calls of a network of
two 64-unit layers, where torch spends about 50 µs per call dispatching its ten small operations and
NumPy about 10 µs on the same arithmetic. `numpy_forward` reads the layers out of an SB3 policy once
(float32 copies of the weights) and applies them in NumPy: features (the flattened observation),
the actor's hidden layers, the action head, then the best action (the argmax of the logits or Q
values, which is the mode SB3's `predict(deterministic=True)` returns).

It knows the policies rlpipe trains and stores (`rlpipe.policy.network.POLICIES`): PPO and A2C's
`ActorCriticPolicy` over discrete actions and DQN's `QNetwork`, with the flatten features extractor
and the activations below. For anything else it returns None and the caller keeps torch. A policy
trained on a GPU is scored on the CPU too, from a copy of its weights: there each bar cost 180-560 µs
of kernel launches and host-device copies (H200, batches of 12 rows) against 18-21 µs in NumPy on
the same machine, with the same actions on 20,000 observations (`benchmarks/gpu_policy.py`).
Its actions are SB3's except where two actions' values are equal to float32 precision (the two
libraries may round the last bit of a sum differently); evaluation and the served model both use
it, so a stored policy acts exactly as it was scored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.dqn.policies import DQNPolicy

from rlpipe.types import IntArray

Layer = Callable[[np.ndarray], np.ndarray]


def _tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x, out=x)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


_ACTIVATIONS: dict[type[torch.nn.Module], Layer] = {torch.nn.Tanh: _tanh, torch.nn.ReLU: _relu}


def numpy_forward(policy: BasePolicy) -> Callable[[np.ndarray], IntArray] | None:
    """The policy's deterministic actions for a batch of observation rows, computed in NumPy; None
    when the policy is not one this module knows (see the module's docstring)."""
    if isinstance(policy, ActorCriticPolicy) and isinstance(policy.action_dist, CategoricalDistribution):
        extractor = policy.pi_features_extractor
        modules = [*policy.mlp_extractor.policy_net, policy.action_net]
    elif isinstance(policy, DQNPolicy):
        extractor = policy.q_net.features_extractor
        modules = list(policy.q_net.q_net)
    else:
        return None
    layers = _layers(modules) if type(extractor) is FlattenExtractor else None
    if layers is None:
        return None

    def act(obs: np.ndarray) -> IntArray:
        x = np.asarray(obs, np.float32).reshape(len(obs), -1)
        for layer in layers:
            x = layer(x)
        return x.argmax(axis=1)

    return act


def _layers(modules: list[torch.nn.Module]) -> list[Layer] | None:
    """NumPy functions for a chain of `Linear` and known activation modules; None for anything else."""
    out: list[Layer] = []
    for module in modules:
        if type(module) is torch.nn.Linear:
            out.append(_linear(module))
        elif type(module) in _ACTIVATIONS:
            out.append(_ACTIVATIONS[type(module)])
        else:
            return None
    return out


def _linear(module: torch.nn.Linear) -> Layer:
    weight = module.weight.detach().cpu().numpy().astype(np.float32).T.copy()
    bias = None if module.bias is None else module.bias.detach().cpu().numpy().astype(np.float32)

    def linear(x: np.ndarray) -> np.ndarray:
        y = x @ weight
        return y if bias is None else np.add(y, bias, out=y)

    return linear
