"""Models refined across generations: a warm start from a registered policy, its lineage, and the
forgetting guard.

`init_from=models:/rlpipe-policy@champion` (or `models:/<name>/<version>`, `runs:/<id>/policy`)
loads the parent's policy through its checked files (sha256 manifest, weights as plain tensors):
the child starts from the parent's weights and normalises its features with the parent's
statistics, so before its first update it acts exactly as the parent does. Its optimizer starts
fresh, at the parent's learning rate times `lr_multiplier`.

Lineage: every job run records its generation (0 for a model trained from scratch), the total
steps trained across generations and, for a child, its parent's version and run. Every
generation's training windows travel in the policy's meta, and a child whose validation or test
slices overlap any of them (plus the embargo) is refused before it trains.

Forgetting guard: the parent is scored on its own validation slices before the first update
(the warm-started child is the parent then; `continuation.guard_windows`), the child on the same
slices after training; a child whose validation score falls more than
`gates.forgetting_tolerance` x |parent's| below it is held back: judged and registered, never
staged or crowned, so the parent keeps its aliases.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from stable_baselines3.common.utils import LinearSchedule

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.data.features import FeatureStats
from rlpipe.data.slices import HELD_OUT, Slice, check_no_leakage, recorded_training
from rlpipe.errors import ConfigError, SliceError
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker

SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class Parent:
    """The policy a job continues: where it is, its family record, its weights and statistics."""

    uri: str
    """The resolved URI (`models:/<name>/<version>` for an alias)."""
    version: str
    run_id: str
    generation: int
    total_timesteps: int
    weights: dict[str, torch.Tensor]
    stats: FeatureStats
    algo: str
    trained_windows: list[list[str]]
    """[start, end] of every generation's training windows."""
    embargo: str
    validation_windows: list[list[str]] = dataclasses.field(default_factory=list)
    """[start, end] of the parent's own validation slices (what its forgetting guard scores on)."""


def load_parent(tracker: Tracker, uri: str) -> Parent:
    """Resolve and load `uri` (files checked against their sha256) with its lineage."""
    ref = resolve_model(tracker, uri, key="init_from")
    model = load_policy(tracker, ref)
    run_tags = tracker.client.get_run(ref.run_id).data.tags if ref.run_id else {}
    meta = model.meta
    windows = meta.get("lineage_train_windows") or meta.get("train_windows") or []
    kept = int(run_tags.get(T.SELECTED_TIMESTEPS, 0) or 0)
    return Parent(
        uri=f"models:/{ref.name}/{ref.version}" if ref.name else ref.uri,
        version=ref.version or "",
        run_id=ref.run_id or "",
        generation=int(run_tags.get(T.GENERATION, 0) or 0),
        total_timesteps=int(run_tags.get(T.TOTAL_TIMESTEPS, kept) or kept),
        weights={k: v.detach().clone() for k, v in model.net.policy.state_dict().items()},
        stats=model.stats,
        algo=str(meta.get("algo", "")),
        trained_windows=[list(w) for w in windows],
        embargo=str(meta.get("embargo", "0D")),
        validation_windows=[list(w) for w in meta.get("validation_windows") or []],
    )


def lineage_tags(parent: Parent | None, kept_timesteps: int) -> dict[str, str]:
    """Generation, total steps across generations and, for a child, where it comes from."""
    if parent is None:
        return {T.GENERATION: "0", T.TOTAL_TIMESTEPS: str(kept_timesteps)}
    return {
        T.GENERATION: str(parent.generation + 1),
        T.TOTAL_TIMESTEPS: str(parent.total_timesteps + kept_timesteps),
        T.PARENT_VERSION: parent.version,
        T.PARENT_RUN: parent.run_id,
        T.INIT_FROM: parent.uri,
    }


def not_trained_by_ancestors(parent: Parent, embargo: str) -> Callable[[str, list[Slice]], None]:
    """A `prepare` guard: the child's validation and test slices stay out of every generation's
    training windows plus the larger of the two embargoes."""

    def guard(_digest: str, slices: list[Slice]) -> None:
        trained = recorded_training(parent.trained_windows, "generation_train")
        gap = max(pd.Timedelta(parent.embargo), pd.Timedelta(embargo))
        try:  # validation and test slices keep the embargo from every generation's training
            check_no_leakage([*trained, *(s for s in slices if s.role in HELD_OUT)], gap)
        except SliceError as exc:
            raise SliceError(
                f"init_from={parent.uri}: an ancestor trained on these bars (embargo: the larger of its "
                f"{parent.embargo} and slices.embargo={embargo}), so they cannot validate or test its child: "
                f"{exc}; move the validation and test slices after its training data"
            ) from exc

    return guard


def warm_start(agent: Any, parent: Parent) -> None:
    """Load the parent's weights into the freshly built `agent` (same network), or say why not."""
    if parent.algo and parent.algo != type(agent).__name__:
        algo = type(agent).__name__
        raise ConfigError(f"init_from={parent.uri} is a {parent.algo} policy; this job's agent is {algo}")
    try:
        agent.policy.load_state_dict(parent.weights, strict=True)
    except RuntimeError as exc:
        raise ConfigError(
            f"init_from={parent.uri}: its network does not fit this job's agent ({exc}); continue it "
            "with the agent config it was trained with"
        ) from exc


def learning_rate(spec: AgentSpec, multiplier: float, schedule: str) -> float | LinearSchedule:
    """The job's learning rate: the agent's (or its algorithm's default) x `multiplier`, constant or
    decaying linearly to zero over the run."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"lr_schedule={schedule!r}: expected one of {SCHEDULES}")
    base = spec.kwargs.get("learning_rate")
    if base is None:
        base = inspect.signature(spec.algorithm().__init__).parameters["learning_rate"].default
    if callable(base) or not math.isfinite(float(base)):
        raise ConfigError(f"agent.learning_rate={base!r}: a number is needed to scale it")
    lr = float(base) * multiplier
    return LinearSchedule(lr, 0.0, 1.0) if schedule == "linear" else lr


@dataclass(frozen=True)
class Guard:
    """The forgetting guard's finding for one child."""

    held: bool
    text: str


def forgetting_guard(parent_score: float, child_score: float, tolerance: float, metric: str) -> Guard:
    """Hold a child whose validation score fell more than `tolerance` x |parent's| below its parent's."""
    if not (math.isfinite(parent_score) and math.isfinite(child_score)):
        return Guard(False, f"not applied: no validation/{metric} for parent or child")
    floor = parent_score - tolerance * abs(parent_score)
    held = child_score < floor
    verb = "held back" if held else "passed"
    return Guard(held, f"{verb}: child validation {metric} {child_score:.3f} vs parent {parent_score:.3f} "
                       f"(floor {floor:.3f}, tolerance {tolerance:.0%})")  # fmt: skip
