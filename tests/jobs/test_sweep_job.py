"""The sweep step in process: verdicts per configuration on every run, the report, idempotence."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.sweep_job import run_sweep_step, start_sweep
from rlpipe.jobs.train_job import run_train
from rlpipe.project import git_sha
from rlpipe.tracking import queries
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF


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
    parent = start_sweep(jobs[0].tracking, "s1", ["seed"])  # what `seed=1,2` on a command line records
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
    # the parent's description in the UI, and the saved view of the sweep's runs that its URL opens
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("2 run(s) of 1 configuration(s) · ") and "rlpipe.runs compare sweep_id=s1" in note
    assert run.data.tags["rlpipe.swept"] == "seed"
    experiment = client.get_experiment(run.info.experiment_id)
    assert outcome.compare_url == (
        f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=rlpipe-s1"
    )
    view = json.loads(experiment.tags["mlflow.sharedViewState.rlpipe-s1"])
    state = json.loads(view["state"])
    assert view["name"] == "sweep s1" and state["orderByKey"] == "metrics.`validation/sharpe_mean`"
    shown = client.search_runs([experiment.experiment_id], filter_string=state["searchFilter"])
    assert {r.info.run_id for r in shown} == {r.run_id for r in results}  # the jobs, flat, no parent
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


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


def compose_job(uri: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=["experiment=smoke", "device=cpu", f"tracking.uri={uri}", *overrides]
        )
    return train_job(cfg)


def test_reuse_matches_the_registered_model_and_registry_promote(sweep):
    """s1 registered seeds 1 and 2 in rlpipe-policy with registry.promote=false: only a job of the
    same model and the same promote flag may count them instead of training again."""
    job, _, results = sweep
    tracker = Tracker.of(job.tracking)
    code = git_sha(Path.cwd())
    assert code != "unknown"  # the suite runs from the checkout, so reuse is possible
    found = queries.finished_job(tracker, results[0].config_hash, 1, code, "rlpipe-policy", False)
    assert found is not None and found.run_id == results[0].run_id
    assert found.registered_model == "rlpipe-policy" and found.model_version == results[0].model_version
    assert queries.finished_job(tracker, results[0].config_hash, 1, code, "polB", False) is None
    assert queries.finished_job(tracker, results[0].config_hash, 1, code, "rlpipe-policy", True) is None


def test_a_sweep_step_never_moves_a_version_of_a_run_it_did_not_judge(sweep):
    """A store written before reuse matched the registered model: s1's runs (rlpipe-policy v1, v2)
    counted in a sweep of polB, whose v1 is another run's. The step judges them and moves nothing."""
    job, _, results = sweep
    tracker = Tracker.of(job.tracking)
    client = MlflowClient(job.tracking.uri)
    with tracker.run("seed-3", {"rlpipe.kind": "job", "rlpipe.sweep_id": "b0"}) as foreign:
        pass  # polB v1 below: a run the legacy sweep never judged (its policy: any file will do)
    client.create_registered_model("polB")
    source = client.get_model_version("rlpipe-policy", results[0].model_version).source
    assert client.create_model_version("polB", source, run_id=foreign.run_id).version == 1
    assert results[0].model_version == "1"
    for r in results:
        tracker.handle(r.run_id).set_tags({"rlpipe.reused_in.legacy": "true"})
    polb = dataclasses.replace(job.tracking, registered_model="polB")
    outcome = run_sweep_step(polb, job.gates, "legacy")
    assert {r.run_id for r in outcome.rows} == {r.run_id for r in results}
    assert [r.model_version for r in outcome.rows] == ["", ""]  # no version of polB is theirs
    v1 = client.get_model_version("polB", "1")
    assert v1.run_id == foreign.run_id and v1.current_stage == "None" and v1.aliases == []
    assert "rlpipe.sweep_verdict" not in v1.tags and not any(
        k.startswith("rlpipe.transition.") for k in v1.tags
    )


def versions_state(uri: str, model: str) -> dict[str, tuple]:
    client = MlflowClient(uri)
    return {
        v.run_id: (
            v.version,
            v.current_stage,
            tuple(sorted(client.get_model_version(model, v.version).aliases)),
            tuple(sorted(v.tags.items())),
        )
        for v in client.search_model_versions(f"name='{model}'")
    }


@pytest.mark.slow
def test_the_same_seeds_into_another_model_train_and_register_their_own_versions(sweep):
    """s1 registered seeds 1 and 2 in rlpipe-policy; b1 registers seed 3 in polB; b2 then asks for
    seeds 1 and 2 in polB: they are not reused from s1, and b2's step moves only versions of runs
    it judged (issue 17: it crowned polB v1, seed 3's policy, from s1's version numbers)."""
    job, _, results = sweep
    uri, promote = job.tracking.uri, "registry.promote=true"
    run_train(compose_job(uri, "seed=3", "tracking.registered_model=polB", promote), RunContext("b1"))
    jobs = [compose_job(uri, f"seed={s}", "tracking.registered_model=polB", promote) for s in (1, 2)]
    mine = [run_train(j, RunContext(sweep_id="b2")) for j in jobs]
    assert not {r.run_id for r in mine} & {r.run_id for r in results}  # trained, not reused from s1
    client = MlflowClient(uri)
    assert [client.get_model_version("polB", r.model_version).run_id for r in mine] == [
        r.run_id for r in mine
    ]
    before = versions_state(uri, "polB")
    outcome = run_sweep_step(jobs[0].tracking, jobs[0].gates, "b2")
    judged = {r.run_id for r in outcome.rows}
    assert judged == {r.run_id for r in mine}
    assert [r.model_version for r in outcome.rows] == [r.model_version for r in mine]
    after = versions_state(uri, "polB")
    assert {k: v for k, v in after.items() if k not in judged} == {
        k: v for k, v in before.items() if k not in judged
    }  # every version of a run the step did not judge is as it was
    champion = outcome.decision.champion
    if champion is not None and champion.model_version:
        assert client.get_model_version("polB", champion.model_version).run_id in judged


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


def test_the_comparison_plot_is_drawn_from_the_records_after_the_step(sweep, monkeypatch):
    from rlpipe.errors import MissingArtifactError
    from rlpipe.jobs import tear_sheet_job
    from rlpipe.reports import plots

    job, parent, _ = sweep
    tracker = Tracker(job.tracking.uri, job.tracking.experiment)
    tracker.ensure_parent_run("not-judged")
    with pytest.raises(MissingArtifactError, match="no sweep step recorded"):
        tear_sheet_job.draw_sweep(tracker, "not-judged")
    outcome = run_sweep_step(job.tracking, job.gates, "s1")
    drawn: list[tuple] = []
    draw = plots.sweep_plot
    monkeypatch.setattr(plots, "sweep_plot", lambda *a: drawn.append(a[:3]) or draw(*a))
    assert tear_sheet_job.draw_sweep(tracker, "s1") == "sweep/comparison.png"
    ((rows, verdicts, champion),) = drawn  # what the step decided, read back from the store
    assert [r.run_id for r in rows] == [r.run_id for r in outcome.rows]
    assert verdicts == {r.run_id: c.verdict for c in outcome.decision.configs for r in c.runs}
    assert champion == (outcome.decision.champion.run_id if outcome.decision.champion else None)
    client = MlflowClient(job.tracking.uri)
    assert client.get_run(parent).data.tags["rlpipe.sweep_plot"] == "drawn"
    assert "sweep/comparison.png" in {f.path for f in client.list_artifacts(parent, "sweep")}
    monkeypatch.setattr(plots, "sweep_plot", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tear_sheet_job.draw_sweep(tracker, "s1")
    assert client.get_run(parent).data.tags["rlpipe.sweep_plot"].startswith("failed: ZeroDivisionError")
