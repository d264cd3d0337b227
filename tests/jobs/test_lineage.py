"""Continuation: warm start from a registered policy, lineage, leakage across generations, and the
forgetting guard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.setup import deterministic_policy
from rlpipe.cli.compose import train_job
from rlpipe.data.features import FeatureStats
from rlpipe.data.slices import Slice, parse_slices
from rlpipe.errors import RegistryError, SliceError
from rlpipe.jobs.lineage import (
    Parent,
    forgetting_guard,
    learning_rate,
    load_parent,
    not_trained_by_ancestors,
    warm_start,
)
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.sweep_job import run_sweep_step
from rlpipe.jobs.train_job import TrainResult, run_train
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF


@dataclass(frozen=True)
class Family:
    uri: str
    tmp: Path
    parent: TrainResult

    def job(self, *overrides: str):
        where = [f"tracking.uri={self.uri}", f"checkpoint.dir={self.tmp}/checkpoints"]
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=["experiment=smoke", "device=cpu", *where, *overrides])
        return train_job(cfg)


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> Family:
    """A parent policy (registered as version 1, given @champion by hand) in a fresh store."""
    tmp = tmp_path_factory.mktemp("family")
    fam = Family(f"sqlite:///{tmp}/mlflow.db", tmp, None)  # type: ignore[arg-type]
    parent = run_train(fam.job("timesteps=16384"))
    MlflowClient(fam.uri).set_registered_model_alias("rlpipe-policy", "champion", parent.model_version)
    return Family(fam.uri, tmp, parent)


class Blank(gym.Env):
    """An env with the policy's observation shape: only its spaces matter (the agent is never trained)."""

    action_space = gym.spaces.Discrete(3)

    def __init__(self, obs_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}


def test_before_any_update_the_child_acts_as_its_parent(family):
    tracker = Tracker(family.uri, "rlpipe")
    parent = load_parent(tracker, "models:/rlpipe-policy@champion")
    assert parent.uri == "models:/rlpipe-policy/1" and parent.generation == 0
    model = load_policy(tracker, resolve_model(tracker, parent.uri))
    job, obs_dim = family.job(), model.net.obs_dim
    child = job.agent.build(DummyVecEnv([lambda: Blank(obs_dim)]), 99, "cpu")  # other initial weights
    obs = np.random.default_rng(0).normal(size=(256, obs_dim)).astype(np.float32)
    assert not np.array_equal(deterministic_policy(child)(obs), model.net.act(obs))
    warm_start(child, parent)
    np.testing.assert_array_equal(deterministic_policy(child)(obs), model.net.act(obs))
    assert learning_rate(job.agent, 0.3, "constant") == pytest.approx(0.3 * job.agent.kwargs["learning_rate"])


def test_a_child_records_its_lineage_and_its_learning_rate(family):
    at = "init_from=models:/rlpipe-policy@champion"
    child = run_train(family.job("timesteps=8192", at, "lr_multiplier=0.5"))  # SB3 logs a rollout late
    run = MlflowClient(family.uri).get_run(child.run_id)
    t = run.data.tags
    assert t["rlpipe.generation"] == "1" and t["rlpipe.parent_version"] == family.parent.model_version
    assert t["rlpipe.parent_run"] == family.parent.run_id
    assert t["rlpipe.init_from"] == "models:/rlpipe-policy/1"
    assert int(t["rlpipe.total_timesteps"]) == 16384 + 8192
    assert run.data.params["init_from"] == "models:/rlpipe-policy/1"  # the version the alias named
    lr = [v for k, v in run.data.metrics.items() if k.endswith("learning_rate")]
    assert lr == [pytest.approx(0.5 * 3e-4)]
    assert float(run.data.params["agent.learning_rate_used"]) == pytest.approx(0.5 * 3e-4)
    version = MlflowClient(family.uri).get_model_version("rlpipe-policy", child.model_version)
    assert version.run_id == child.run_id


def test_a_child_made_worse_on_purpose_is_held_back_and_the_parent_keeps_champion(family):
    # a learning rate 10000x the parent's wrecks the policy in one rollout: with seed 1 its validation
    # Sharpe falls from the parent's -0.60 to about -1.7 (the same on every CPU; a fixed seed)
    child = run_train(
        family.job(
            "timesteps=4096",
            "init_from=models:/rlpipe-policy@champion",
            "lr_multiplier=10000",
            "registry.promote=true",
        ),
        RunContext(sweep_id="week-2"),
    )
    client = MlflowClient(family.uri)
    t = client.get_run(child.run_id).data.tags
    assert t["rlpipe.forgetting_guard"].startswith("held back") and t["rlpipe.promotable"] == "false"
    assert "forgetting guard" in t["rlpipe.verdict_reason"]
    assert client.get_model_version("rlpipe-policy", child.model_version).tags["rlpipe.promotable"] == "false"
    job = family.job()
    run_sweep_step(job.tracking, job.gates, "week-2")
    champion = client.get_model_version_by_alias("rlpipe-policy", "champion")
    assert str(champion.version) == family.parent.model_version


def test_a_child_may_not_test_on_bars_an_ancestor_trained_on(family):
    # walk-forward trains on everything before its validation window (into late 2022); a child on
    # the regimes slices would test on 2022-06 .. 2023-03, bars that parent trained on
    wf = run_train(family.job("timesteps=512", "slices=walk_forward", "seed=5"))
    name = f"models:/rlpipe-policy/{wf.model_version}"
    with pytest.raises(SliceError, match=f"init_from={name}: an ancestor trained on these bars"):
        run_train(family.job(f"init_from={name}"))


def test_a_childs_validation_keeps_its_ancestors_embargo():
    # the parent recorded a 7-day embargo; the child declares 1 day: the larger one holds
    parent = Parent("models:/rlpipe-policy/1", "1", "r1", 0, 512, {}, FeatureStats((), (), ()), "PPO",
                    [["2021-01-01 00:00:00+00:00", "2021-01-10 23:00:00+00:00"]], "7D")  # fmt: skip
    guard = not_trained_by_ancestors(parent, "1D")

    def child(val_start: str) -> list[Slice]:
        return parse_slices([
            {"name": "train_1", "role": "train", "start": "2020-12-01", "end": "2021-01-10 23:00"},
            {"name": "val_1", "role": "validation", "start": val_start, "end": "2021-01-25"},
            {"name": "test_1", "role": "test", "start": "2021-02-01", "end": "2021-02-10"},
        ])  # fmt: skip

    with pytest.raises(SliceError) as err:
        guard("digest", child("2021-01-14 00:00"))
    assert str(err.value) == (
        "init_from=models:/rlpipe-policy/1: an ancestor trained on these bars (embargo: the larger of its 7D "
        "and slices.embargo=1D), so they cannot validate or test its child: validation slice 'val_1' "
        "[2021-01-14 00:00:00+00:00 .. 2021-01-25 00:00:00+00:00] starts 3 days 01:00:00 after training "
        "slice 'generation_train_0' [2021-01-01 00:00:00+00:00 .. 2021-01-10 23:00:00+00:00] ends, within "
        "the embargo of 7 days 00:00:00 (slices.embargo); move or shorten one of the two windows so that "
        "more than 7 days 00:00:00 separates them, or lower slices.embargo; move the validation and test "
        "slices after its training data"
    )
    assert guard("digest", child("2021-01-18 00:00")) is None  # 7 days 1 hour after: accepted


def test_the_forgetting_guard_rule():
    assert forgetting_guard(2.0, 1.85, 0.1, "m").held is False  # within 10% of |2.0|
    assert forgetting_guard(2.0, 1.75, 0.1, "m").held is True
    assert forgetting_guard(-1.0, -1.05, 0.1, "m").held is False  # floor -1.1
    assert forgetting_guard(float("nan"), 1.0, 0.1, "m").held is False


def test_a_child_on_newer_data_mixes_it_with_the_older_and_is_guarded_on_its_parents_slices(family):
    # the parent trained on the regimes slices (until 2022-01-18); walk-forward trains into late 2022
    # and tests after it, so 70% of the child's episodes come from the bars its parent never saw
    child = run_train(family.job("timesteps=2048", "slices=walk_forward", "seed=3",
                                 "init_from=models:/rlpipe-policy/1"))  # fmt: skip
    t = MlflowClient(family.uri).get_run(child.run_id).data.tags
    assert t["rlpipe.continuation_data"].startswith("mix: 70% of episodes from ")
    assert "after the ancestors' training ended (2022-01-18 23:00:00+00:00)" in t["rlpipe.continuation_data"]
    assert t["rlpipe.forgetting_guard"].endswith("on the parent's validation slices")


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("models:/nope@champion", "Registered Model with name=nope not found"),
        ("models:/rlpipe-policy/99", "Model Version (name=rlpipe-policy, version=99) not found"),
        (
            "runs:/0123456789abcdef0123456789abcdef/policy",
            "Run with id=0123456789abcdef0123456789abcdef not found",
        ),
    ],
)
def test_a_parent_the_store_does_not_hold_is_a_user_error_naming_init_from(tmp_path, uri, why):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(RegistryError) as e:
        load_parent(Tracker(store, "rlpipe"), uri)
    assert str(e.value).startswith(f"init_from={uri}: not in the store at {store} (")
    assert why in str(e.value) and "`make ui` lists them" in str(e.value)


def test_a_model_to_evaluate_the_store_does_not_hold_is_a_user_error_naming_model(tmp_path):
    with pytest.raises(RegistryError, match=r"^model=models:/nope/1: not in the store at "):
        resolve_model(Tracker(f"sqlite:///{tmp_path}/mlflow.db", "rlpipe"), "models:/nope/1")
