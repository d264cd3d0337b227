"""The sweep step in process: verdicts per configuration on every run, the report, idempotence."""

from __future__ import annotations

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.sweep_job import run_sweep_step, start_sweep
from rlpipe.jobs.train_job import run_train
from tests.conftest import CONF


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two smoke jobs of sweep s1 (seeds 1 and 2) in a store of their own, trained once."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('sweep_job')}/mlflow.db"
    jobs = []
    for seed in (1, 2):
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose(
                "train", overrides=["experiment=smoke", f"seed={seed}", "device=cpu", f"tracking.uri={uri}"]
            )
        jobs.append(train_job(cfg))
    parent = start_sweep(jobs[0].tracking, "s1")
    results = [run_train(job, RunContext(sweep_id="s1")) for job in jobs]
    return jobs[0], parent, results


def registry_state(uri: str) -> dict:
    client = MlflowClient(uri)
    return {
        v.version: (
            v.current_stage,
            tuple(client.get_model_version("rlpipe-policy", v.version).aliases),
            len(v.tags),
        )
        for v in client.search_model_versions("name='rlpipe-policy'")
    }


def test_step_judges_the_configuration_and_reports_to_the_parent(sweep):
    job, parent, results = sweep
    tracking_uri = job.tracking.uri
    outcome = run_sweep_step(job.tracking, job.gates, "s1")
    (config,) = outcome.decision.configs
    assert {r.run_id for r in config.runs} == {r.run_id for r in results} and config.label == job.label
    assert [r.sweep_verdict for r in outcome.rows] == [config.verdict] * 2  # the rows carry the new verdict
    client = MlflowClient(tracking_uri)
    for r in results:
        assert client.get_run(r.run_id).data.tags["rlpipe.sweep_verdict"] == config.verdict
        assert client.get_run(r.run_id).data.tags["mlflow.parentRunId"] == parent
    run = client.get_run(parent)
    assert run.info.status == "FINISHED" and run.data.metrics["sweep/runs"] == 2.0
    report = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/sweep/report.json")
    assert report["configurations"][0]["verdict"] == config.verdict and report["n_trials"] == 1
    champion = outcome.decision.champion
    assert run.data.tags["rlpipe.champion_version"] == (champion.model_version if champion else "none")


def test_a_second_step_changes_nothing(sweep):
    job, parent, _ = sweep
    tracking_uri = job.tracking.uri
    first = run_sweep_step(job.tracking, job.gates, "s1")
    state = registry_state(tracking_uri)
    text = mlflow.artifacts.load_text(
        f"{MlflowClient(tracking_uri).get_run(parent).info.artifact_uri}/sweep/report.md"
    )
    second = run_sweep_step(job.tracking, job.gates, "s1")
    assert registry_state(tracking_uri) == state
    assert [(c.verdict, c.reason) for c in second.decision.configs] == [
        (c.verdict, c.reason) for c in first.decision.configs
    ]
    again = mlflow.artifacts.load_text(
        f"{MlflowClient(tracking_uri).get_run(parent).info.artifact_uri}/sweep/report.md"
    )
    assert again == text


def test_a_sweep_without_runs_judges_nothing(smoke_job):
    job = smoke_job()
    outcome = run_sweep_step(job.tracking, job.gates, "empty")
    assert outcome.rows == [] and outcome.decision.configs == [] and outcome.decision.champion is None


def test_a_run_whose_artifacts_are_gone_is_skipped_and_the_step_goes_on(sweep):
    """Last in this module: it deletes a run's curves from the shared store."""
    import shutil
    from urllib.parse import urlparse

    job, parent, results = sweep
    client = MlflowClient(job.tracking.uri)
    gone = results[0].run_id
    shutil.rmtree(urlparse(client.get_run(gone).info.artifact_uri).path + "/curves")
    outcome = run_sweep_step(job.tracking, job.gates, "s1")
    skipped = next(r for r in outcome.rows if r.run_id == gone)
    assert skipped.sweep_verdict == "skipped" and "curves/equity.parquet cannot be read" in skipped.error
    (config,) = outcome.decision.configs
    assert [r.run_id for r in config.runs] == [results[1].run_id]  # judged on what is left
    assert client.get_run(gone).data.tags["rlpipe.sweep_verdict"] == "skipped"
    report = mlflow.artifacts.load_text(f"{client.get_run(parent).info.artifact_uri}/sweep/report.md")
    assert (
        "Runs: 2 (0 failed, 1 skipped)" in report
        and f"({gone}) was not judged: skipped: run {gone}" in report
    )
