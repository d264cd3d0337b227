"""A trained policy network as two plain files: `weights.pt` and `architecture.json`; nothing pickled.

`save_policy_net` writes the network's `state_dict` (tensors only, `torch.save`) and a JSON
description of what rebuilds it: the algorithm (an allow-list: PPO, A2C, DQN), the SB3 policy
class, the observation and action spaces and the policy keywords (net_arch, activation name...).
`load_policy_net` rebuilds the SB3 policy class from the JSON and reads the weights with
`torch.load(..., weights_only=True)`, which refuses anything but tensors and plain containers, so
loading a policy never runs code that came with it. `PolicyNet.act` is the same forward pass as
`rlpipe.agents.setup.deterministic_policy` (both in NumPy where `rlpipe.agents.forward` knows the
network), so a loaded policy acts exactly like the trained one.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.dqn.policies import DQNPolicy

from rlpipe.agents.forward import numpy_forward
from rlpipe.errors import PolicyError
from rlpipe.types import IntArray, JsonDict

WEIGHTS = "weights.pt"
ARCHITECTURE = "architecture.json"
FORMAT = 1
"""Version of the architecture JSON; a file of another version is refused."""

POLICIES: dict[str, type[BasePolicy]] = {"PPO": ActorCriticPolicy, "A2C": ActorCriticPolicy, "DQN": DQNPolicy}
"""The algorithms whose policies can be stored, and the SB3 policy class each one trains."""
ACTIVATIONS: dict[str, type[torch.nn.Module]] = {
    c.__name__: c
    for c in (torch.nn.Tanh, torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.ELU, torch.nn.GELU, torch.nn.SiLU)
}
# Constructor keywords that shape the network (the optimizer does not matter for inference).
_KWARGS: dict[type[BasePolicy], tuple[str, ...]] = {
    ActorCriticPolicy: ("net_arch", "normalize_images", "ortho_init", "share_features_extractor"),
    DQNPolicy: ("net_arch", "normalize_images"),
}


@dataclass(frozen=True)
class PolicyNet:
    """A rebuilt policy network and its description, acting deterministically on observation rows."""

    policy: BasePolicy
    architecture: JsonDict

    @property
    def obs_dim(self) -> int:
        return int(self.architecture["observation_space"]["shape"][0])

    def act(self, obs: np.ndarray) -> IntArray:
        """Deterministic actions for a batch of observations (as `deterministic_policy(model)`)."""
        if self._forward is not None:
            return self._forward(obs)
        with torch.no_grad():
            tensor = torch.as_tensor(obs, device=self.policy.device)
            return self.policy._predict(tensor, deterministic=True).cpu().numpy()

    @cached_property
    def _forward(self) -> Callable[[np.ndarray], IntArray] | None:
        return numpy_forward(self.policy)  # the weights are loaded once: read them out once


def save_policy_net(model: BaseAlgorithm, folder: Path) -> list[Path]:
    """Write `weights.pt` and `architecture.json` of `model`'s policy into `folder`; returns both paths.

    Raises:
        PolicyError: the algorithm, the policy class or its spaces cannot be stored this way.
    """
    algo = type(model).__name__
    policy = model.policy
    expected = POLICIES.get(algo)
    if expected is None or type(policy) is not expected:
        raise PolicyError(
            f"cannot store a {algo} policy of class {type(policy).__name__}: expected one of "
            f"{sorted(POLICIES)} with its default SB3 policy (MlpPolicy)"
        )
    arch = {
        "format": FORMAT,
        "algo": algo,
        "policy": expected.__name__,
        "observation_space": _box_json(policy.observation_space),
        "action_space": _discrete_json(policy.action_space),
        "policy_kwargs": _policy_kwargs(policy, expected),
    }
    folder.mkdir(parents=True, exist_ok=True)
    weights, arch_path = folder / WEIGHTS, folder / ARCHITECTURE
    torch.save({k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}, weights)
    arch_path.write_text(json.dumps(arch, indent=2, sort_keys=True))
    return [weights, arch_path]


def load_policy_net(folder: Path) -> PolicyNet:
    """Rebuild the policy stored in `folder` on the CPU, unpickling nothing.

    Raises:
        PolicyError: a file is missing, the architecture is not one this version can build, or the
            weights are not plain tensors of that architecture.
    """
    arch = _read_architecture(folder / ARCHITECTURE)
    policy = _build(arch)
    try:
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise PolicyError(f"{folder / WEIGHTS}: missing") from exc
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError) as exc:
        raise PolicyError(f"{folder / WEIGHTS}: not a plain tensor state_dict, refused ({exc})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PolicyError(f"{folder / WEIGHTS}: expected a mapping of tensors")
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise PolicyError(f"{folder / WEIGHTS}: does not fit {ARCHITECTURE} ({exc})") from exc
    policy.set_training_mode(False)
    return PolicyNet(policy, arch)


def _box_json(space: gym.Space) -> JsonDict:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise PolicyError(f"observation space {space} is not a 1-d Box")
    return {
        "shape": list(space.shape),
        "low": space.low.astype(float).tolist(),
        "high": space.high.astype(float).tolist(),
        "dtype": str(space.dtype),
    }


def _discrete_json(space: gym.Space) -> JsonDict:
    if not isinstance(space, gym.spaces.Discrete):
        raise PolicyError(f"action space {space} is not Discrete")
    return {"n": int(space.n), "start": int(space.start)}


def _policy_kwargs(policy: BasePolicy, cls: type[BasePolicy]) -> JsonDict:
    params = policy._get_constructor_parameters()
    extractor = params.get("features_extractor_class", FlattenExtractor)
    if extractor is not FlattenExtractor or params.get("features_extractor_kwargs"):
        raise PolicyError(f"features extractor {extractor.__name__}: only FlattenExtractor can be stored")
    activation = params["activation_fn"].__name__
    if activation not in ACTIVATIONS:
        raise PolicyError(f"activation {activation}: expected one of {sorted(ACTIVATIONS)}")
    if params.get("use_sde"):
        raise PolicyError("policies with use_sde=True cannot be stored")
    values = {**params, "share_features_extractor": getattr(policy, "share_features_extractor", True)}
    return {"activation_fn": activation, **{k: values[k] for k in _KWARGS[cls] if k in values}}


def _read_architecture(path: Path) -> JsonDict:
    try:
        arch = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise PolicyError(f"{path}: missing") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(arch, dict) or arch.get("format") != FORMAT:
        raise PolicyError(f"{path}: expected an architecture of format {FORMAT}")
    algo = arch.get("algo")
    if algo not in POLICIES or arch.get("policy") != POLICIES[algo].__name__:
        raise PolicyError(f"{path}: algo {algo!r} / policy {arch.get('policy')!r} is not in the allow-list")
    return arch


def _build(arch: JsonDict) -> BasePolicy:
    cls = POLICIES[arch["algo"]]
    try:
        obs, act, kwargs = arch["observation_space"], arch["action_space"], dict(arch["policy_kwargs"])
        unknown = set(kwargs) - {"activation_fn", *_KWARGS[cls]}
        if unknown:
            raise PolicyError(f"unknown policy keywords {sorted(unknown)}")
        kwargs["activation_fn"] = ACTIVATIONS[kwargs["activation_fn"]]
        box = gym.spaces.Box(
            np.asarray(obs["low"], np.float32), np.asarray(obs["high"], np.float32), dtype=np.float32
        )
        if list(box.shape) != list(obs["shape"]) or obs["dtype"] != "float32":
            raise PolicyError(f"observation space {obs['shape']} {obs['dtype']} is not a float32 Box")
        space = gym.spaces.Discrete(int(act["n"]), start=int(act["start"]))
        return cls(box, space, _zero_schedule, **kwargs).to("cpu")
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"{ARCHITECTURE}: cannot build a {arch['algo']} policy from it ({exc!r})") from exc


def _zero_schedule(_: float) -> float:
    return 0.0
