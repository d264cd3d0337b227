"""A composed Hydra config -> the typed job it describes (the only place config groups are instantiated)."""

from __future__ import annotations

from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rlpipe.agents.factory import AgentSpec
from rlpipe.errors import ConfigError
from rlpipe.jobs.evaluate_job import EvaluateJob
from rlpipe.jobs.train_job import TrainJob


def check_required(cfg: DictConfig) -> None:
    """Refuse a config with values still marked ??? (for example data.path with data=csv)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"required value(s) not set: {', '.join(missing)}; pass them as key=value overrides"
        )


def group(node: DictConfig) -> Any:
    """A config group instantiated as its `_target_` dataclass, with plain lists and dicts inside."""
    return instantiate(node, _convert_="all")


def agent_spec(node: DictConfig) -> AgentSpec:
    """The `agent` group as an `AgentSpec` (the `_target_` class and its constructor keywords)."""
    values = OmegaConf.to_container(node, resolve=True)
    assert isinstance(values, dict)
    target = values.pop("_target_", None)
    if not target:
        raise ConfigError("agent._target_ is missing (e.g. stable_baselines3.PPO)")
    return AgentSpec(str(target), {str(k): v for k, v in values.items()})


def train_job(cfg: DictConfig) -> TrainJob:
    """The training job of a composed conf/train.yaml."""
    check_required(cfg)
    return TrainJob(
        seed=int(cfg.seed),
        timesteps=int(cfg.timesteps),
        device=str(cfg.device),
        progress_bar=bool(cfg.progress_bar),
        data=group(cfg.data),
        env=group(cfg.env),
        reward=group(cfg.reward),
        agent=agent_spec(cfg.agent),
        slices=group(cfg.slices),
        gates=group(cfg.gates),
        tracking=group(cfg.tracking),
    )


def evaluate_job(cfg: DictConfig) -> EvaluateJob:
    """The re-evaluation job of a composed conf/evaluate.yaml."""
    check_required(cfg)
    return EvaluateJob(
        data=group(cfg.data),
        slices=group(cfg.slices),
        gates=group(cfg.gates),
        tracking=group(cfg.tracking),
        model=str(cfg.model),
        seed=int(cfg.seed),
    )
