"""The health monitor on the registry: a degraded champion rolled back (on_degraded=rollback) with
the reason in the history, or only flagged; the verdict on the version and the paper run; the
sweep step's @paper alias."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rlpipe.errors import ConfigError, RegistryError
from rlpipe.gates.health import DEGRADED, HEALTHY, HealthConfig
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.health_job import judge_version
from rlpipe.jobs.sweep_job import run_sweep_step
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import RegistryConfig, TrackingConfig
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.stores import recorded_version

MU, SIGMA = 3e-4, 3e-3


def equity(n: int, mu: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([[1.0], np.cumprod(1.0 + rng.normal(mu, SIGMA, n))])


@pytest.fixture
def store(tracking_uri):
    """A store whose @champion is v2, crowned by a second sweep after v1 (the previous champion)."""
    tracking = TrackingConfig(uri=tracking_uri, experiment="health", registered_model="m")
    tracker = Tracker.of(tracking)
    registry = Registry(tracker.client, "m")
    curves = [equity(1440, MU, s) for s in range(3)]  # trained on a market that went up
    v1, v2 = (recorded_version(tracker, registry, f"job-{i}", curves) for i in (1, 2))
    registry.apply_sweep("s1", v1, [], {v1: "sweep s1: champion"})
    registry.apply_sweep("s2", v2, [], {v2: "sweep s2: champion"})
    return tracking, tracker, registry, v1, v2


def flipped() -> np.ndarray:
    """The market after training: the drift flips sign."""
    return equity(1000, -MU, 99)


def test_a_degraded_champion_is_rolled_back_with_the_reason_in_the_history(store):
    tracking, _, registry, v1, v2 = store
    health = judge_version(
        tracking, RegistryConfig(on_degraded="rollback"), v2, flipped(), HealthConfig(), None
    )
    assert health.verdict == DEGRADED
    assert registry.alias_version("champion") == v1
    assert registry.version(v2).current_stage == "Archived"
    assert registry.version(v2).tags[T.HEALTH_ACTION] == f"rolled back to v{v1}"
    restored = [text for _, v, text in registry.history([v1]) if v == v1][-1]
    assert restored.startswith("Production @champion by ") and "health degraded after 1000 bars" in restored
    assert "bootstrap lower bound" in restored


def test_with_flag_a_degraded_champion_is_only_tagged_on_the_version_and_the_run(store):
    tracking, tracker, registry, _, v2 = store
    before = registry.history([v2])
    with tracker.run("paper", {}) as run:
        health = judge_version(tracking, RegistryConfig(), v2, flipped(), HealthConfig(), run)
    assert registry.alias_version("champion") == v2 and registry.history([v2]) == before
    tags = registry.version(v2).tags
    assert tags[T.HEALTH] == DEGRADED and tags[T.HEALTH_RUN] == run.run_id
    assert tags[T.HEALTH_ACTION] == "recorded (registry.on_degraded=flag)"
    assert json.loads(tags[T.HEALTH_FIGURES])["bars"] == 1000.0
    recorded = tracker.client.get_run(run.run_id).data
    assert recorded.tags[T.HEALTH] == DEGRADED
    assert recorded.metrics["health/realised_mean"] == pytest.approx(health.figures["realised_mean"])
    assert recorded.metrics["health/mean_lower_bound"] == pytest.approx(health.figures["mean_lower_bound"])


def test_a_healthy_record_moves_nothing(store):
    tracking, _, registry, _, v2 = store
    health = judge_version(
        tracking, RegistryConfig(on_degraded="rollback"), v2, equity(1000, MU, 98), HealthConfig(), None
    )
    assert health.verdict == HEALTHY and registry.alias_version("champion") == v2
    assert registry.version(v2).tags[T.HEALTH] == HEALTHY


def test_a_degraded_version_that_is_no_longer_champion_rolls_nothing_back(store):
    tracking, _, registry, v1, v2 = store
    judge_version(tracking, RegistryConfig(on_degraded="rollback"), v1, flipped(), HealthConfig(), None)
    assert registry.alias_version("champion") == v2
    assert "not @champion" in registry.version(v1).tags[T.HEALTH_ACTION]


def test_an_unknown_version_and_a_bad_on_degraded_are_one_line_errors(store):
    tracking = store[0]
    with pytest.raises(RegistryError, match="has no version '99'"):
        judge_version(tracking, RegistryConfig(), "99", flipped(), HealthConfig(), None)
    with pytest.raises(ConfigError, match=r"registry\.on_degraded='delete'"):
        RegistryConfig(on_degraded="delete")


def job_tags(sweep_id: str, seed: int, deployment: str) -> dict[str, str]:
    return {
        T.KIND: T.JOB, T.SWEEP_ID: sweep_id, T.CONFIG_HASH: "c1", T.CONFIG_LABEL: "ppo-c1", T.SEED: str(seed),
        T.VERDICT: "pass", T.CLASSIFICATION: "APPROVED", T.DEPLOYMENT: deployment, T.REGIMES_MISSING: "none",
        T.REGISTERED_MODEL: "m", T.PROMOTABLE: "true",
    }  # fmt: skip


@pytest.mark.parametrize(("deployment", "paper"), [("paper", True), ("live", False)])
def test_the_sweep_step_gives_a_champion_decided_paper_the_paper_alias(tracking_uri, deployment, paper):
    tracking = TrackingConfig(uri=tracking_uri, experiment="health", registered_model="m")
    tracker = Tracker.of(tracking)
    registry = Registry(tracker.client, "m")
    metrics = {
        "test/total": 0.3,
        "test/max_drawdown": 0.05,
        "test/sharpe_mean": 2.0,
        "validation/sharpe_mean": 1.0,
    }
    for seed in (1, 2):
        curves = [equity(1440, 2e-3, 10 * seed + s) for s in range(3)]
        recorded_version(tracker, registry, f"job-{seed}", curves, job_tags("sp", seed, deployment), metrics)
    outcome = run_sweep_step(tracking, GatesConfig(), "sp")
    assert outcome.decision.champion is not None, outcome.decision.selection
    champion = registry.alias_version("champion")
    assert registry.alias_version("paper") == (champion if paper else None)
    moves = [text for _, _, text in registry.history([champion])]
    assert (
        any(text.startswith("@paper by ") and "deployment decision: paper" in text for text in moves) == paper
    )
    run_sweep_step(tracking, GatesConfig(), "sp")  # a second step moves nothing
    assert len(registry.history([champion])) == len(moves)
