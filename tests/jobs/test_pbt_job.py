"""A PBT round (`jobs.pbt_job.run_round`) trains through `jobs.learn.learn`: it continues the member's
state in its state folder, a finished round is not trained again, a corrupt manifest is refused."""

from __future__ import annotations

import dataclasses
import math

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.errors import CheckpointError
from rlpipe.jobs.job_config import PBTRound, TrainJob
from rlpipe.jobs.pbt_job import ENV_SEED_STRIDE, round_budget, run_round
from rlpipe.jobs.pbt_population import PBTSpec, member_folder
from rlpipe.jobs.spec import RunContext
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT

ROLLOUT = 4096  # the smoke preset's PPO rollout: a round of `ROLLOUT` steps is one update


def member_round(smoke_job, tmp_path, round_: int) -> TrainJob:
    """Member 0's job for `round_` of a 3-round population, as the sweeper sets it."""
    spec = PBTSpec(population=2, rounds=3, interval=ROLLOUT, member=0, round=round_, dir=f"{tmp_path}/pbt")
    return dataclasses.replace(smoke_job("seed=4"), kind=PBTRound(spec), timesteps=ROLLOUT * (round_ + 1))


def test_a_round_continues_the_members_steps_and_is_not_trained_twice(smoke_job, tmp_path):
    job = member_round(smoke_job, tmp_path, 1)
    assert isinstance(job.kind, PBTRound)
    assert round_budget(job, job.kind.pbt) == dataclasses.replace(
        round_budget(job, job.kind.pbt), seed=5, env_seed=4 + ENV_SEED_STRIDE, total=3 * ROLLOUT, more=ROLLOUT
    )
    folder = member_folder(tmp_path / "pbt", 0)
    first = run_round(member_round(smoke_job, tmp_path, 0), RunContext(root=ROOT))
    after_0 = folder.read()
    assert after_0 is not None and (after_0.round, after_0.num_timesteps, after_0.score) == (
        0,
        ROLLOUT,
        first,
    )
    second = run_round(job, RunContext(root=ROOT))
    after_1 = folder.read()
    assert after_1 is not None and (after_1.round, after_1.num_timesteps) == (1, 2 * ROLLOUT)
    assert after_1.run_id == after_0.run_id and after_1.state_sha256 != after_0.state_sha256
    assert math.isfinite(second) and after_1.score == second
    assert run_round(job, RunContext(root=ROOT)) == second and folder.read() == after_1  # done: not retrained
    client = MlflowClient(job.tracking.uri)
    history = client.get_metric_history(after_1.run_id, "pbt/validation/sharpe_mean")
    assert [(m.step, m.value) for m in history] == [(0, first), (1, second)]
    steps = client.get_metric_history(after_1.run_id, "curve/time/total_timesteps")
    assert sorted((m.step, m.value) for m in steps) == [(ROLLOUT, ROLLOUT), (2 * ROLLOUT, 2 * ROLLOUT)]


def test_a_corrupt_member_manifest_is_refused_before_anything_is_recorded(smoke_job, tmp_path):
    folder = member_folder(tmp_path / "pbt", 0).path
    folder.mkdir(parents=True)
    (folder / "checkpoint.json").write_text("{")
    job = member_round(smoke_job, tmp_path, 1)
    with pytest.raises(CheckpointError, match=r"member-0/checkpoint\.json is unreadable .*; delete .*pbt"):
        run_round(job, RunContext(root=ROOT))
    assert Tracker(job.tracking.uri, "rlpipe").search("") == []
