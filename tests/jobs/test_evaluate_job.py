"""Re-evaluation in process: a logged or registered policy on other slices, as a linked run."""

from __future__ import annotations

import dataclasses

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.errors import SliceError
from rlpipe.jobs.evaluate_job import run_evaluate
from rlpipe.jobs.job_config import EvaluateJob
from rlpipe.jobs.train_job import TrainResult, run_train
from tests.support.project import CONF


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[TrainResult, EvaluateJob]:
    """One smoke job trained once for the module, and an evaluation job of its model version."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('evaluate')}/mlflow.db"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", "seed=2", "device=cpu", f"tracking.uri={uri}"])
    job = train_job(cfg)
    result = run_train(job)
    walk_forward = dataclasses.replace(job.slices, kind="walk_forward", windows=[], test_bars=253)
    evaluate = EvaluateJob(
        job.data, walk_forward, job.gates, job.tracking, f"models:/rlpipe-policy/{result.model_version}", 0
    )
    return result, evaluate


def test_registered_version_is_evaluated_walk_forward_as_a_linked_run(trained):
    result, job = trained
    out = run_evaluate(job)
    client = MlflowClient(job.tracking.uri)
    run = client.get_run(out.run_id)
    assert run.info.status == "FINISHED" and out.model_version == result.model_version
    t, m = run.data.tags, run.data.metrics
    assert t["rlpipe.kind"] == "evaluation" and t["rlpipe.source_run_id"] == result.run_id
    assert t["rlpipe.model_version"] == result.model_version and t["rlpipe.model_name"] == "rlpipe-policy"
    assert all(f"slice/fold{k}/total" in m for k in range(1, 6)) and m["test/slices"] == 5.0
    assert not any(k.startswith(("train/", "slice/train/")) for k in m)  # its training slices: not re-run
    assert out.test["total"] == m["test/total"]
    version = client.get_model_version("rlpipe-policy", result.model_version)
    assert version.tags["rlpipe.last_evaluation_run"] == out.run_id
    assert run.data.params["model"] == job.model and run.data.params["slices.kind"] == "walk_forward"


def test_a_run_uri_evaluates_the_same_policy_the_same_way(trained):
    result, job = trained
    by_version = run_evaluate(job)
    by_run = run_evaluate(dataclasses.replace(job, model=f"runs:/{result.run_id}/policy"))
    assert by_run.test == by_version.test and by_run.model_version is None


def test_evaluating_inside_the_training_period_is_refused(trained):
    _, job = trained
    leaky = dataclasses.replace(job, slices=dataclasses.replace(job.slices, test_bars=3000))
    with pytest.raises(SliceError, match="was trained on this data"):
        run_evaluate(leaky)
    client = MlflowClient(job.tracking.uri)
    (failed,) = client.search_runs(
        [client.get_experiment_by_name("rlpipe").experiment_id],
        filter_string="tags.`rlpipe.kind` = 'evaluation' and attributes.status = 'FAILED'",
    )
    assert failed.info.status == "FAILED" and "SliceError" in failed.data.tags["rlpipe.error"]
    assert not any(k.startswith(("test/", "slice/")) for k in failed.data.metrics)  # refused before it ran


def test_other_data_is_not_checked_against_the_training_windows(trained):
    _, job = trained
    other = dataclasses.replace(job.data, seed=job.data.seed + 1)  # another market: no leakage possible
    out = run_evaluate(
        dataclasses.replace(job, data=other, slices=dataclasses.replace(job.slices, test_bars=3000))
    )
    assert out.test["slices"] == 5.0
