"""The weekly allocation's plan: counts, steps, the search grid, what refiners and the champion slot
continue, and a young registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from rlpipe.errors import ConfigError
from rlpipe.jobs.weekly_plan import WeeklySpec, assign, grid, plan, ranked_versions

SEARCH = {"agent.learning_rate": [1e-4, 3e-4, 1e-3], "agent.gamma": [0.95, 0.99]}


def test_the_default_plan_spends_the_budget_60_30_10_over_21_members_and_their_seeds():
    spec = WeeklySpec(search=SEARCH)
    members = plan(spec)
    assert len(members) == spec.jobs == 21 * 2
    by_role = {r: [m for m in members if m.role == r] for r in ("explorer", "refiner", "champion")}
    assert [len(v) for v in by_role.values()] == [30, 10, 2]
    steps = {r: sum(m.timesteps for m in v) for r, v in by_role.items()}
    assert steps == {"explorer": 21_300_000, "refiner": 10_650_000, "champion": 3_550_000}
    assert sum(steps.values()) == 35_500_000
    assert {m.lr_multiplier for m in by_role["refiner"]} == {0.5}
    assert {m.lr_multiplier for m in by_role["champion"]} == {0.3}
    # the longest first, so that parallel workers end the week together; ties role by role
    assert [m.timesteps for m in members] == sorted((m.timesteps for m in members), reverse=True)
    assert [(m.role, m.slot, m.seed) for m in members[:4]] == [
        ("champion", 0, 1), ("champion", 0, 6), ("refiner", 0, 1), ("refiner", 0, 6)
    ]  # fmt: skip


def test_explorers_take_distinct_configurations_and_next_week_the_next_ones():
    spec = WeeklySpec(explorers=3, refiners=0, champion=0, split=[1, 0, 0], seeds=[1], search=SEARCH)
    configs = grid(spec)
    assert len(configs) == 6 and len({tuple(sorted(c.items())) for c in configs}) == 6
    empty = Registry()
    week1 = [assign(WeeklySpec(**{**spec.__dict__, "job": j}), empty, "m", "w1", 0).choice for j in range(3)]
    week2 = [assign(WeeklySpec(**{**spec.__dict__, "job": j}), empty, "m", "w2", 1).choice for j in range(3)]
    assert week1 + week2 == configs


def test_bad_plans_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"weekly\.job=42: the plan has 42 jobs .*range\(0,42\)"):
        plan(WeeklySpec(search=SEARCH, job=42))
    with pytest.raises(ConfigError, match=r"weekly\.split=\[0\.5, 0\.3, 0\.1\]"):
        plan(WeeklySpec(search=SEARCH, split=[0.5, 0.3, 0.1]))
    with pytest.raises(ConfigError, match=r"weekly\.search is empty"):
        plan(WeeklySpec())


@dataclass
class Version:
    version: str
    run_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Registry:
    """The registry calls the plan makes, over plain versions."""

    versions: list[Version] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    champion: str | None = None
    name: str = "rlpipe-policy"

    def alias_version(self, alias: str) -> str | None:
        return self.champion if alias == "champion" else None

    def all_versions(self) -> list[Version]:
        return self.versions

    def run_metric(self, run_id: str, key: str) -> float:
        return self.scores[run_id]

    def version(self, version: str) -> Version:
        return next(v for v in self.versions if v.version == version)

    def run_params(self, run_id: str) -> dict[str, str]:  # what the run was trained with, as text
        return {"agent.learning_rate": "0.001", "agent.gamma": "0.95", "agent.n_steps": "64"}


def registry() -> Registry:
    v = [
        Version("1", "r1", {"rlpipe.verdict": "pass"}),
        Version("2", "r2", {"rlpipe.verdict": "retest"}),
        Version("3", "r3", {"rlpipe.verdict": "reject"}),  # never refined
        Version("4", "r4", {"rlpipe.verdict": "pass", "rlpipe.promotable": "false"}),  # held back
        Version("5", "r5", {"rlpipe.verdict": "pass", "rlpipe.sweep_id": "this-week"}),  # this week's own
        Version("6", "r6", {"rlpipe.verdict": "pass"}),
        Version("7", "r7", {"rlpipe.verdict": "pass", "rlpipe.config_hash": "h2"}),  # seed 2 of a config:
        Version("8", "r8", {"rlpipe.verdict": "pass", "rlpipe.config_hash": "h2"}),  # only its best counts
    ]
    scores = {"r1": 0.5, "r2": 1.5, "r3": 9.0, "r4": 9.0, "r5": 9.0, "r6": 3.0, "r7": 0.1, "r8": 0.2}
    return Registry(v, scores, champion="6")


def test_refiners_continue_the_best_versions_by_validation_and_the_champion_slot_the_champion():
    reg = registry()
    assert ranked_versions(reg, "m", "this-week") == [
        ("2", 1.5),
        ("1", 0.5),
        ("8", 0.2),
    ]  # not 6: the champion
    spec = WeeklySpec(explorers=1, refiners=4, champion=1, seeds=[1], search=SEARCH)
    assigned = [assign(WeeklySpec(**{**spec.__dict__, "job": j}), reg, "m", "this-week") for j in range(6)]
    jobs = {j.member.name: j for j in assigned}
    assert sorted(jobs) == ["champion-0", "explorer-0", "refiner-0", "refiner-1", "refiner-2", "refiner-3"]
    v = "models:/rlpipe-policy/"
    continued = {"explorer-0": None, "refiner-0": f"{v}2", "refiner-1": f"{v}1", "refiner-2": f"{v}8",
                 "refiner-3": None, "champion-0": f"{v}6"}  # fmt: skip
    assert {name: j.init_from for name, j in jobs.items()} == continued
    inherited = {"agent.learning_rate": 0.001, "agent.gamma": 0.95}  # what the parent's run trained with
    assert jobs["refiner-0"].choice == jobs["champion-0"].choice == inherited
    young = jobs["refiner-3"]
    assert "only 3 version(s) to refine" in young.note and young.choice  # a young registry explores
    assert young.choice != jobs["explorer-0"].choice


def test_the_weekly_experiment_sweeps_one_job_per_member_and_seed():
    from hydra import compose, initialize_config_dir

    from rlpipe.cli.schemas import register_configs
    from tests.support.project import CONF

    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", ["experiment=weekly", "weekly.explorers=4", "weekly.seeds=[1,2,3]"],
                      return_hydra_config=True)  # fmt: skip
    assert cfg.hydra.sweeper.params["weekly.job"] == "range(0,30)"  # (4 + 5 + 1) members x 3 seeds
