"""A composed Hydra config -> the typed job it describes (the only place config groups are instantiated)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.errors import ConfigError
from rlpipe.jobs.job_config import (
    Continued,
    EvaluateJob,
    Fresh,
    JobKind,
    PaperJob,
    PBTRound,
    TrainJob,
    WeeklyMember,
)
from rlpipe.jobs.routine_config import RoutineJob
from rlpipe.jobs.weekly_plan import Assignment
from rlpipe.project import project_root

RENAMED = {
    "checkpoints": (
        "lengths",
        "the training lengths scored on validation, e.g. lengths=[500000,1000000] (the resumable "
        "state's cadence and folder are still checkpoint.every and checkpoint.dir)",
    ),
}
"""Former top-level keys of conf/train.yaml -> (the key now, what it holds): one that is still set
is refused naming its new name."""


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
    former = next((k for k in unknown if k in RENAMED), None)
    if former:
        raise ConfigError(renamed(former))
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(unknown)}: no schema declares them (an override "
            "+key=value adds a key); remove them or fix the spelling (--cfg job lists every key)"
        )


def renamed(key: str) -> str:
    """The refusal of a former key of conf/train.yaml, naming the key it is now."""
    new, what = RENAMED[key]
    return f"config key {key} is now {new}: {what}"


def renamed_in(message: str) -> str | None:
    """The refusal of a former key when Hydra's `message` refused it as not in the train schema
    (an override or a preset that still sets it); None for any other message."""
    found = re.search(r"Key '([^']+)' not in 'TrainSchema'", message)
    if not found or found[1] not in RENAMED:
        return None
    where = re.match(r"In '[^']+': ", message)  # a preset (a config file) that sets it
    return (where[0] if where else "") + renamed(found[1])


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


def train_job(cfg: DictConfig, member: Assignment | None = None) -> TrainJob:
    """The training job of a composed conf/train.yaml (refused when a routine preset selected `routine`);
    `member`: a weekly sweep job's assignment (its role and note; `cli.weekly_member`)."""
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
        lengths=tuple(int(n) for n in cfg.lengths),
        checkpoint=group(cfg.checkpoint),
        resume=bool(cfg.resume),
        force=bool(cfg.force),
        kind=job_kind(cfg, member),
        plots=bool(cfg.plots),
        lr_schedule=str(cfg.lr_schedule),
    )


def job_kind(cfg: DictConfig, member: Assignment | None = None) -> JobKind:
    """What kind of training job the config describes: `pbt` set, a PBT round; `weekly` set, a weekly
    member; else continuing `init_from`, or trained from scratch."""
    continued = None
    if cfg.init_from is not None:
        continued = Continued(str(cfg.init_from), float(cfg.lr_multiplier), group(cfg.continuation))
    if cfg.get("pbt") is not None:
        if continued:
            raise ConfigError(
                f"init_from={continued.init_from} with pbt: a PBT population trains its members from "
                "scratch; drop init_from, or run without experiment=pbt"
            )
        if cfg.get("weekly") is not None:
            raise ConfigError(
                "pbt and weekly: a job is a PBT round or a weekly member, not both; choose "
                "experiment=pbt or experiment=weekly"
            )
        return PBTRound(group(cfg.pbt))
    if cfg.get("weekly") is not None:
        role, note = (member.member.name, member.note) if member else ("", "")
        return WeeklyMember(group(cfg.weekly), role, note, continued)
    return continued or Fresh()


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
