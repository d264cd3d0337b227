"""The weekly allocation: explorers, refiners and a champion continuation as one sweep.

The week's `budget` of training steps is split between three roles (default 60 / 30 / 10 %):
- `explorers`: new configurations from `search` (the grid of listed values, shuffled by
  `search_seed` and taken in order, each week after the last week's, so no two explorers share
  a configuration until the grid runs out);
- `refiners`: continue the top registry versions by validation score (not this sweep's own, not
  the champion; only versions that passed their run gates and may be promoted) with the searched
  hyperparameters they were trained with, at `refiner_lr_multiplier` x their learning rate;
- one continuation of `@champion` likewise, at `champion_lr_multiplier`.
Every member trains on each of `seeds`, so each is a configuration the sweep step can judge for
seed stability; a member's steps are its role's share of the budget divided by its role's count
and the seeds. With the defaults: 15 explorers x 710k, 5 refiners x 1.065M, 1 champion x 1.775M
steps per seed (35.5M in all, 2 seeds each).

One sweep job is one (member, seed): `weekly.job` in [0, `jobs`) (the experiment sweeps it).
A refiner slot with no version to refine (a young registry), or a champion slot without a
champion, trains a configuration from the search space instead and says so.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from rlpipe.errors import ConfigError
from rlpipe.tracking import tags as T

if TYPE_CHECKING:  # only passed in: the plan itself imports no MLflow (the CLI checks it first)
    from rlpipe.tracking.registry import Registry

ROLES = ("explorer", "refiner", "champion")


@dataclass
class WeeklySpec:
    """The weekly allocation (config key `weekly`, set by `experiment=weekly`)."""

    budget: int = 35_500_000
    """Training steps of the whole week, every member and seed."""
    explorers: int = 15
    refiners: int = 5
    champion: int = 1
    """1: continue `@champion`; 0: no champion slot."""
    split: list[float] = field(default_factory=lambda: [0.6, 0.3, 0.1])
    """The budget's shares for explorers, refiners and the champion continuation."""
    seeds: list[int] = field(default_factory=lambda: [1, 6])
    refiner_lr_multiplier: float = 0.5
    champion_lr_multiplier: float = 0.3
    search: dict[str, list[Any]] = field(default_factory=dict)
    """Explorers' search space: config key -> the values to try (e.g. agent.learning_rate)."""
    search_seed: int = 0
    checkpoint_fractions: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    """Each member scores its policy on validation at these fractions of its steps and keeps one."""
    job: int = 0
    """This sweep job's index in the plan, [0, jobs)."""

    @property
    def counts(self) -> tuple[int, int, int]:
        return self.explorers, self.refiners, self.champion

    @property
    def jobs(self) -> int:
        return sum(self.counts) * len(self.seeds)


@dataclass(frozen=True)
class Member:
    """One sweep job of the week: a role's slot trained on one seed."""

    role: str
    slot: int
    """Index within the role."""
    seed: int
    timesteps: int
    lr_multiplier: float

    @property
    def name(self) -> str:
        return f"{self.role}-{self.slot}"


def check(spec: WeeklySpec) -> None:
    """Refuse a plan that cannot be run, naming the key."""
    if min(spec.counts) < 0 or spec.champion > 1 or sum(spec.counts) == 0:
        raise ConfigError(f"weekly: explorers, refiners >= 0 and champion 0 or 1 (got {spec.counts})")
    if len(spec.split) != 3 or min(spec.split) < 0 or not math.isclose(sum(spec.split), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"weekly.split={list(spec.split)}: three shares (explorers, refiners, champion) summing to 1"
        )
    if not spec.seeds or len(set(spec.seeds)) != len(spec.seeds):
        raise ConfigError(
            f"weekly.seeds={list(spec.seeds)}: at least one seed, no repeats; pass e.g. weekly.seeds=[1,6]"
        )
    short = [r for r, n, steps in zip(ROLES, spec.counts, role_steps(spec), strict=True) if n and steps < 1]
    if short:
        raise ConfigError(
            f"weekly.budget={spec.budget}: the {'/'.join(short)} members would train 0 steps (budget x "
            f"split {list(spec.split)} / (members x seeds)); raise weekly.budget, e.g. weekly.budget=35500000"
        )
    for key in ("refiner_lr_multiplier", "champion_lr_multiplier"):
        value = getattr(spec, key)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"weekly.{key}={value}: a learning-rate multiplier must be a finite number > 0")
    if not 0 <= spec.job < spec.jobs:
        raise ConfigError(
            f"weekly.job={spec.job}: the plan has {spec.jobs} jobs ({sum(spec.counts)} members x "
            f"{len(spec.seeds)} seeds); sweep hydra.sweeper.params.weekly.job=range(0,{spec.jobs})"
        )
    if spec.explorers and not spec.search:
        raise ConfigError("weekly.search is empty: explorers need a search space (key: [values])")
    bad = [k for k, v in spec.search.items() if not isinstance(v, list | tuple) or not v]
    if bad:
        raise ConfigError(f"weekly.search: {bad} need a non-empty list of values")


def plan(spec: WeeklySpec) -> list[Member]:
    """Every job of the week, in `weekly.job` order: the longest members first (a launcher running
    jobs in this order on parallel workers then ends them together), otherwise role by role, each
    member on every seed."""
    check(spec)
    members = []
    for role, count, steps in zip(ROLES, spec.counts, role_steps(spec), strict=True):
        lr = {"explorer": 1.0, "refiner": spec.refiner_lr_multiplier}.get(role, spec.champion_lr_multiplier)
        for slot in range(count):
            for seed in spec.seeds:
                members.append(Member(role, slot, seed, steps, lr))
    return sorted(members, key=lambda m: -m.timesteps)  # stable: ties keep the role-by-role order


def role_steps(spec: WeeklySpec) -> list[int]:
    """Steps of one member on one seed, per role: its share of the budget / (its count x seeds)."""
    return [
        int(spec.budget * share / max(count * len(spec.seeds), 1))
        for count, share in zip(spec.counts, spec.split, strict=True)
    ]


def grid(spec: WeeklySpec) -> list[dict[str, Any]]:
    """The search space's configurations in the order explorers take them."""
    keys = sorted(spec.search)
    combos = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(spec.search[k] for k in keys))
    ]
    order = np.random.default_rng(spec.search_seed).permutation(len(combos))
    return [combos[i] for i in order]


def explore(spec: WeeklySpec, index: int) -> dict[str, Any]:
    """The `index`-th configuration of the search space (the grid repeats when it runs out)."""
    configs = grid(spec)
    return configs[index % len(configs)] if configs else {}


def ranked_versions(registry: Registry, metric: str, sweep_id: str | None) -> list[tuple[str, float]]:
    """The versions a refiner may continue, best validation score first: passed their run gates,
    may be promoted, not registered by this sweep, not the champion (its own slot continues it),
    one per configuration (its best seed), so the refiners continue different models."""
    champion = registry.alias_version("champion")
    best: dict[str, tuple[str, float]] = {}
    for v in registry.all_versions():
        t = v.tags
        if str(v.version) == champion or t.get(T.PROMOTABLE) == "false" or t.get(T.VERDICT) == "reject":
            continue
        if sweep_id and t.get(T.SWEEP_ID) == sweep_id:
            continue
        score = registry.run_metric(v.run_id, f"validation/{metric}") if v.run_id else math.nan
        config = t.get(T.CONFIG_HASH) or f"v{v.version}"
        if math.isfinite(score) and (config not in best or score > best[config][1]):
            best[config] = (str(v.version), score)
    return sorted(best.values(), key=lambda vs: -vs[1])


def inherited(spec: WeeklySpec, registry: Registry, version: str) -> dict[str, Any]:
    """The searched hyperparameters a continued version was trained with (from its run's params), so
    its child goes on with them (its learning rate then scaled by the role's multiplier)."""
    run_id = registry.version(version).run_id
    params = registry.run_params(run_id) if run_id else {}
    return {k: yaml.safe_load(params[k]) for k in spec.search if k in params}


@dataclass(frozen=True)
class Assignment:
    """What one member job trains: its init_from (None: from scratch), values, steps, seed."""

    member: Member
    init_from: str | None
    choice: dict[str, Any]
    note: str


def assign(
    spec: WeeklySpec, registry: Registry, metric: str, sweep_id: str | None, week: int = 0
) -> Assignment:
    """This job's assignment; a refiner or champion slot with nothing to continue explores.

    Args:
        week: how many weekly sweeps ran explorers before this one: explorers take the next
            configurations of the grid, not last week's again.
    """
    m = plan(spec)[spec.job]
    start = week * sum(spec.counts)  # every slot may explore, so a week may use that many
    if m.role == "explorer":
        note = f"explorer {m.slot}: a new configuration (week {week + 1} of the search)"
        return Assignment(m, None, explore(spec, start + m.slot), note)
    if m.role == "refiner":
        ranked = ranked_versions(registry, metric, sweep_id)
        if m.slot < len(ranked):
            version, score = ranked[m.slot]
            note = f"refiner {m.slot}: version {version} (validation {metric} {score:.3f}, rank {m.slot + 1})"
            return Assignment(
                m, f"models:/{registry.name}/{version}", inherited(spec, registry, version), note
            )
        why = f"refiner {m.slot}: only {len(ranked)} version(s) to refine"
    else:
        champion = registry.alias_version("champion")
        if champion:
            uri, values = f"models:/{registry.name}/{champion}", inherited(spec, registry, champion)
            return Assignment(m, uri, values, f"champion: version {champion}")
        why = "champion: no @champion yet"
    slot = start + spec.explorers + m.slot + (spec.refiners if m.role == "champion" else 0)
    return Assignment(m, None, explore(spec, slot), f"{why}, so a new configuration from the search space")
