"""The evaluation contract end to end, through the real CLI: skill is promoted, noise is not.

Two real sweeps of three seeds on the default preset (about a minute each on two cores): one on
the synthetic market with its planted signal, one on a martingale (no drift, no mean reversion,
no planted signal: nothing to learn), where agents may still end positive by chance and must not
be promoted. (`signal_strength=0` alone is not "no skill": its regime drift and sideways mean
reversion are learnable.)
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.support.project import cli, drawn_sweep_plot

SEEDS = "seed=1,6,11"


def sweep(tmp: Path, *overrides: str) -> tuple[subprocess.CompletedProcess, str, str]:
    uri = f"sqlite:///{tmp}/mlflow.db"
    proc = cli(
        "rlpipe.train",
        "-m",
        f"hydra.sweep.dir={tmp}/multirun",
        "experiment=seed_sweep",
        SEEDS,
        "progress_bar=false",
        "plots=false",
        f"tracking.uri={uri}",
        *overrides,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    (parent,) = client.search_runs([exp.experiment_id], filter_string="tags.`rlpipe.kind` = 'sweep'")
    return proc, uri, parent.data.tags["rlpipe.sweep_id"]


@pytest.fixture(scope="module")
def signal(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("signal"))


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    return sweep(
        tmp_path_factory.mktemp("noise"), "data.signal_strength=0", "data.trend=0", "data.mean_reversion=0"
    )


def jobs(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    return client.search_runs([exp.experiment_id], filter_string="tags.`rlpipe.kind` = 'job'")


def registry_state(uri: str) -> dict:
    client = MlflowClient(uri)
    return {
        v.version: (
            v.current_stage,
            tuple(sorted(client.get_model_version("rlpipe-policy", v.version).aliases)),
            tuple(sorted(k for k in v.tags if k.startswith("rlpipe.transition."))),
        )
        for v in client.search_model_versions("name='rlpipe-policy'")
    }


def test_planted_signal_sweep_promotes_a_champion(signal):
    _, uri, sweep_id = signal
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("rlpipe-policy", "champion")
    assert champion.current_stage == "Production"
    assert champion.tags["rlpipe.sweep_id"] == sweep_id
    runs = jobs(uri)
    assert len(runs) == 3 and {r.data.tags["rlpipe.sweep_verdict"] for r in runs} == {"promote"}
    best = max(runs, key=lambda r: r.data.metrics["validation/sharpe_mean"])
    assert champion.run_id == best.info.run_id  # the best seed by validation, never by test
    parent = client.search_runs([runs[0].info.experiment_id], filter_string="tags.`rlpipe.kind` = 'sweep'")[0]
    assert parent.info.status == "FINISHED"
    assert all(r.data.tags["mlflow.parentRunId"] == parent.info.run_id for r in runs)
    mlflow.set_tracking_uri(uri)
    report = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/sweep/report.md")
    assert f"Champion: v{champion.version}" in report and "Production @champion" in report
    assert drawn_sweep_plot(uri, parent.info.run_id) == [  # the comparison drawn after the sweep step
        "sweep/comparison.png",
        "sweep/report.json",
        "sweep/report.md",
    ]
    assert parent.data.tags["rlpipe.champion_run"] == champion.run_id
    challengers = [
        v for v in client.search_model_versions("name='rlpipe-policy'") if v.current_stage == "Staging"
    ]
    assert len(challengers) == 2  # the passing seeds that are not the champion
    aliases = client.get_registered_model("rlpipe-policy").aliases
    assert aliases == {
        "champion": champion.version,
        "challenger": aliases["challenger"],
        "challenger-2": aliases["challenger-2"],
    }
    assert {aliases["challenger"], aliases["challenger-2"]} == {v.version for v in challengers}
    for v in [champion, *challengers]:  # both verdicts on every version
        assert v.tags["rlpipe.sweep_verdict"] == "promote" and v.tags["rlpipe.verdict"] in ("pass", "retest")


@pytest.mark.slow  # a second 3 x 300k-step sweep; runs in make test-all
def test_a_martingale_market_promotes_nothing(noise):
    _, uri, _ = noise
    client = MlflowClient(uri)
    runs = jobs(uri)
    assert {r.data.tags["rlpipe.sweep_verdict"] for r in runs} == {"reject"}
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("rlpipe-policy", "champion")
    stages = {v.current_stage for v in client.search_model_versions("name='rlpipe-policy'")}
    assert stages <= {"None"}


@pytest.mark.slow  # ~25 s; idempotence in process: jobs/test_sweep_job, tracking/test_registry
def test_promote_by_hand_is_idempotent(signal):
    _, uri, sweep_id = signal
    before = registry_state(uri)
    for given in ([f"sweep_id={sweep_id}"], []):  # without sweep_id: the newest sweep, said so
        proc = cli("rlpipe.promote", *given, f"tracking.uri={uri}")
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert registry_state(uri) == before
    assert f"no sweep_id given: judging the newest sweep, {sweep_id}" in proc.stderr


def test_rollback_without_a_previous_champion_is_refused_clearly(signal):
    _, uri, _ = signal
    proc = cli("rlpipe.promote", "rollback=true", f"tracking.uri={uri}")
    assert proc.returncode != 0
    assert "first champion" in proc.stderr + proc.stdout


def test_champion_is_reevaluated_walk_forward_as_a_linked_run(signal):
    _, uri, _ = signal
    proc = cli(
        "rlpipe.evaluate",
        "model=models:/rlpipe-policy@champion",
        "slices=walk_forward",
        f"tracking.uri={uri}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("rlpipe-policy", "champion")
    run = client.get_run(champion.tags["rlpipe.last_evaluation_run"])
    assert run.data.tags["rlpipe.kind"] == "evaluation" and run.data.tags["rlpipe.model_version"] == str(
        champion.version
    )
    m = run.data.metrics
    assert all(f"slice/fold{k}/total" in m for k in range(1, 6))
    for key in (
        "test/sharpe_min",
        "test/sharpe_max",
        "test/sharpe_mean",
        "test/sharpe_std",
        "test/positive_slices",
    ):
        assert key in m
    labels = {
        s["regime"]
        for s in mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/report/report.json")["slices"]
    }
    assert labels <= {"bull", "bear", "sideways"}


def test_reevaluating_on_the_training_period_is_refused(signal):
    _, uri, _ = signal
    proc = cli("rlpipe.evaluate", "slices=walk_forward", "slices.test_bars=3000", f"tracking.uri={uri}")
    assert proc.returncode != 0
    assert "trained on this data" in proc.stderr + proc.stdout
