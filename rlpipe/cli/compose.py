"""A composed Hydra config -> the typed job it describes (the only place config groups are instantiated)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.errors import ConfigError
from rlpipe.jobs.job_config import EvaluateJob, PaperJob, RoutineJob, TrainJob
from rlpipe.project import project_root


def check_required(cfg: DictConfig) -> None:
    """Refuse a config with values still marked ??? (for example data.path with data=csv)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"required value(s) not set: {', '.join(missing)}; pass them as key=value overrides"
        )


def check_keys(cfg: DictConfig) -> None:
    """Refuse keys no schema declares: `+key=value` adds them even to a closed node.

    The `agent` group is open (any constructor keyword); `AgentSpec.check` refuses its unknown keys.
    """
    unknown = _unknown_keys(cfg, "")
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(unknown)}: no schema declares them (an override "
            "+key=value adds a key); remove them or fix the spelling (--cfg job lists every key)"
        )


def _unknown_keys(node: Any, prefix: str) -> list[str]:
    if isinstance(node, ListConfig):
        return [k for i, item in enumerate(node) for k in _unknown_keys(item, f"{prefix}{i}.")]
    schema = OmegaConf.get_type(node) if isinstance(node, DictConfig) else None
    if schema is None or not dataclasses.is_dataclass(schema):
        return []
    declared = {f.name for f in dataclasses.fields(schema)}
    out: list[str] = []
    for key in node:
        full = f"{prefix}{key}"
        out += [full] if key not in declared else _unknown_keys(node[key], f"{full}.")
    return out


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
    """The training job of a composed conf/train.yaml (refused when a routine preset selected `routine`)."""
    if cfg.get("routine") is not None:
        raise ConfigError(
            "experiment=routine and experiment=routine_smoke (the `routine` group) are presets of the "
            "replayed routine, not of a training job: run python -m rlpipe.routine experiment=routine_smoke "
            "(or experiment=routine); it runs each step's training sweep itself"
        )
    check_required(cfg)
    check_keys(cfg)
    return TrainJob(
        seed=int(cfg.seed),
        timesteps=int(cfg.timesteps),
        device=str(cfg.device),
        progress_bar=bool(cfg.progress_bar),
        threads=None if cfg.threads is None else int(cfg.threads),
        data=group(cfg.data),
        env=group(cfg.env),
        reward=group(cfg.reward),
        agent=agent_spec(cfg.agent),
        slices=group(cfg.slices),
        gates=group(cfg.gates),
        tracking=group(cfg.tracking),
        registry=group(cfg.registry),
        checkpoints=tuple(int(n) for n in cfg.checkpoints),
        checkpoint=group(cfg.checkpoint),
        resume=bool(cfg.resume),
        force=bool(cfg.force),
        plots=bool(cfg.plots),
        init_from=None if cfg.init_from is None else str(cfg.init_from),
        lr_multiplier=float(cfg.lr_multiplier),
        lr_schedule=str(cfg.lr_schedule),
        continuation=group(cfg.continuation),
        pbt=None if cfg.get("pbt") is None else group(cfg.pbt),
        weekly=None if cfg.get("weekly") is None else group(cfg.weekly),
    )


def evaluate_job(cfg: DictConfig) -> EvaluateJob:
    """The re-evaluation job of a composed conf/evaluate.yaml."""
    check_required(cfg)
    check_keys(cfg)
    return EvaluateJob(
        data=group(cfg.data),
        slices=group(cfg.slices),
        gates=group(cfg.gates),
        tracking=group(cfg.tracking),
        model=str(cfg.model),
        seed=int(cfg.seed),
    )


def paper_job(cfg: DictConfig) -> PaperJob:
    """The paper-trading job of a composed conf/paper.yaml."""
    check_required(cfg)
    check_keys(cfg)
    return PaperJob(
        model=str(cfg.model),
        data=group(cfg.data),
        tracking=group(cfg.tracking),
        follow=bool(cfg.follow),
        resume=bool(cfg.resume),
        paper=group(cfg.paper),
        registry=group(cfg.registry),
        health=group(cfg.health),
        root=Path(project_root()),  # a relative paper.dir is under it (an absolute one stays as it is)
    )


def routine_job(cfg: DictConfig) -> RoutineJob:
    """The replayed routine of a composed conf/routine.yaml."""
    check_required(cfg)
    check_keys(cfg)
    return RoutineJob(
        routine=group(cfg.routine),
        data=group(cfg.data),
        tracking=group(cfg.tracking),
        registry=group(cfg.registry),
        health=group(cfg.health),
        resume=bool(cfg.resume),
        root=Path(project_root()),
    )
