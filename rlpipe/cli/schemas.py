"""Structured config schemas, generated from the runtime dataclasses and registered with Hydra.

Each core group's `_target_` is a plain dataclass of the package (`SimConfig`, `RewardConfig`,
...), which stays the single definition of its fields, types and docstrings. The schema made
from it makes every field required (values live in conf/ only) and closes the node, so a typo
in an override or a wrong type fails at start-up with Hydra's message naming the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import field, make_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.gates.health import HealthConfig
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.job_config import CheckpointConfig, ContinuationSpec, PaperConfig
from rlpipe.jobs.pbt_population import PBTSpec
from rlpipe.jobs.routine_config import RoutineSpec
from rlpipe.jobs.weekly_plan import WeeklySpec
from rlpipe.project import project_root
from rlpipe.tracking.config import RegistryConfig, TrackingConfig

GROUPS: dict[str, type] = {
    "data": DataSpec,
    "env": SimConfig,
    "reward": RewardConfig,
    "slices": SliceSpec,
    "gates": GatesConfig,
    "tracking": TrackingConfig,
    "registry": RegistryConfig,
    "checkpoint": CheckpointConfig,
    "continuation": ContinuationSpec,
}


def _omegaconf_type(tp: Any) -> Any:
    """PEP 604 unions OmegaConf understands: `float | None` -> `Optional[float]`; a union of several
    types (`str | list[str] | None`) -> `Any`, checked by the dataclass itself when instantiated."""
    if isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return Optional[args[0]] if len(args) == 1 else Any  # noqa: UP045 - OmegaConf needs typing.Optional
    return tp


def schema_of(cls: type) -> type:
    """A closed schema with `_target_` = `cls` and every field of `cls` required."""
    hints = typing.get_type_hints(cls)
    fields: list[tuple[str, Any, Any]] = [
        ("_target_", str, field(default=f"{cls.__module__}.{cls.__qualname__}"))
    ]
    for f in dataclasses.fields(cls):
        fields.append((f.name, _omegaconf_type(hints[f.name]), field(default=MISSING)))
    return make_dataclass(f"{cls.__name__}Schema", fields)


def _train_schema() -> type:
    fields: list[tuple[str, Any, Any]] = [
        (g, schema_of(c), field(default=MISSING)) for g, c in GROUPS.items()
    ]
    fields += [
        ("agent", Any, field(default=MISSING)),  # checked against the SB3 constructor at start-up
        ("seed", int, field(default=MISSING)),
        ("timesteps", int, field(default=MISSING)),
        ("device", str, field(default=MISSING)),
        ("progress_bar", bool, field(default=MISSING)),
        ("threads", Optional[int], field(default=MISSING)),  # noqa: UP045 - OmegaConf needs typing.Optional
        ("lengths", list[int], field(default=MISSING)),
        ("resume", bool, field(default=MISSING)),
        ("force", bool, field(default=MISSING)),
        ("plots", bool, field(default=MISSING)),
        ("init_from", Optional[str], field(default=MISSING)),  # noqa: UP045
        ("lr_multiplier", float, field(default=MISSING)),
        ("lr_schedule", str, field(default=MISSING)),
        ("weekly", Optional[schema_of(WeeklySpec)], field(default=None)),  # noqa: UP045
        ("pbt", Optional[schema_of(PBTSpec)], field(default=None)),  # noqa: UP045
        # set by a routine preset only, so that a training job can refuse it by name (`train_job`)
        ("routine", Optional[schema_of(RoutineSpec)], field(default=None)),  # noqa: UP045
    ]
    return make_dataclass("TrainSchema", fields)


def _promote_schema() -> type:
    return make_dataclass(
        "PromoteSchema",
        [
            ("tracking", schema_of(TrackingConfig), field(default=MISSING)),
            ("gates", schema_of(GatesConfig), field(default=MISSING)),
            ("sweep_id", Optional[str], field(default=None)),  # noqa: UP045
            ("rollback", bool, field(default=False)),
        ],
    )


def _evaluate_schema() -> type:
    fields: list[tuple[str, Any, Any]] = [
        (g, schema_of(GROUPS[g]), field(default=MISSING)) for g in ("data", "slices", "gates", "tracking")
    ]
    fields += [("model", str, field(default=MISSING)), ("seed", int, field(default=MISSING))]
    return make_dataclass("EvaluateSchema", fields)


def _paper_schema() -> type:
    fields: list[tuple[str, Any, Any]] = [
        (g, schema_of(GROUPS[g]), field(default=MISSING)) for g in ("data", "tracking")
    ]
    fields += [
        ("paper", schema_of(PaperConfig), field(default=MISSING)),
        ("registry", schema_of(RegistryConfig), field(default=MISSING)),
        ("health", schema_of(HealthConfig), field(default=MISSING)),
        ("model", str, field(default=MISSING)),
        ("follow", bool, field(default=MISSING)),
        ("resume", bool, field(default=MISSING)),
    ]
    return make_dataclass("PaperSchema", fields)


def _routine_schema() -> type:
    fields: list[tuple[str, Any, Any]] = [
        (g, schema_of(GROUPS[g]), field(default=MISSING)) for g in ("data", "tracking", "registry")
    ]
    fields += [
        ("routine", schema_of(RoutineSpec), field(default=MISSING)),
        ("health", schema_of(HealthConfig), field(default=MISSING)),
        ("resume", bool, field(default=MISSING)),
    ]
    return make_dataclass("RoutineSchema", fields)


def _weekly_jobs(explorers: int, refiners: int, champion: int, seeds: Any) -> int:
    """The number of sweep jobs of experiment=weekly: members x seeds."""
    return (int(explorers) + int(refiners) + int(champion)) * len(seeds)


def register_configs() -> None:
    """Register the root schema and the `rlpipe_root` resolver (idempotent)."""
    OmegaConf.register_new_resolver("rlpipe_root", project_root, replace=True)
    OmegaConf.register_new_resolver("rlpipe_weekly_jobs", _weekly_jobs, replace=True)
    store = ConfigStore.instance()
    store.store(name="train_schema", node=_train_schema())
    store.store(name="promote_schema", node=_promote_schema())
    store.store(name="evaluate_schema", node=_evaluate_schema())
    store.store(name="paper_schema", node=_paper_schema())
    store.store(name="routine_schema", node=_routine_schema())
