"""The SB3 algorithm named by config (`agent._target_` + constructor keywords), checked before it is built.

Importing this module imports no SB3 (nor torch): the algorithm is imported when it is asked for
(`check`, `build`), so the CLI can build and check a job's other values first, in about a second.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rlpipe.errors import ConfigError
from rlpipe.types import JsonDict

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.vec_env import VecEnv


@dataclass(frozen=True)
class AgentSpec:
    """An SB3 algorithm class (dotted path) and its constructor keywords (config group `agent`)."""

    target: str
    """Dotted path of the algorithm class, e.g. stable_baselines3.PPO."""
    kwargs: JsonDict = field(default_factory=dict)
    """Constructor keywords (policy, learning_rate, ...); env, seed, device and verbose are the job's."""

    @property
    def name(self) -> str:
        """Short lower-case name of the algorithm (ppo, a2c, dqn)."""
        return self.target.rpartition(".")[2].lower()

    def as_config(self) -> JsonDict:
        return {"_target_": self.target, **self.kwargs}

    def algorithm(self) -> type[BaseAlgorithm]:
        """The algorithm class; a config error if it cannot be imported or is no SB3 algorithm."""
        from stable_baselines3.common.base_class import BaseAlgorithm  # SB3 and torch: seconds, on demand

        module, _, name = self.target.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigError(f"agent._target_={self.target!r} cannot be imported ({exc})") from exc
        if not (isinstance(cls, type) and issubclass(cls, BaseAlgorithm)):
            raise ConfigError(f"agent._target_={self.target!r} is not a stable-baselines3 algorithm class")
        return cls

    def check(self) -> None:
        """Refuse keys the constructor does not take (a typo would otherwise crash late)."""
        accepted = set(inspect.signature(self.algorithm().__init__).parameters)
        unknown = [k for k in self.kwargs if k not in accepted]
        if unknown:
            raise ConfigError(
                f"agent.{unknown[0]} is not a parameter of {self.target}; unknown key(s) {unknown}"
            )

    def build(self, env: VecEnv, seed: int, device: str) -> BaseAlgorithm:
        """The algorithm on `env`, seeded, on `device`."""
        return self.algorithm()(env=env, seed=seed, device=device, verbose=0, **self.kwargs)
