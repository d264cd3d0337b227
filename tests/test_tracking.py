"""The MLflow edge: store set-up, FAILED runs with tracebacks, registry transitions with history."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import registry, runs
from rlpipe.tracking.store import artifact_root, ensure_experiment


class Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


def test_experiment_is_created_once_with_artifacts_beside_the_db(tracking_uri, tmp_path):
    first = ensure_experiment(tracking_uri, "exp")
    assert ensure_experiment(tracking_uri, "exp") == first
    exp = MlflowClient(tracking_uri).get_experiment(first)
    assert exp.artifact_location == artifact_root(tracking_uri)
    assert exp.artifact_location.endswith("/mlruns/artifacts")


def test_crashing_job_run_is_failed_with_its_traceback(tracking_uri):
    exp = ensure_experiment(tracking_uri, "exp")
    with pytest.raises(ZeroDivisionError), runs.job_run(exp, "boom", {"rlpipe.sweep_id": "s"}) as run_id:
        runs.log_metrics({"before/crash": 1.0})
        _ = 1 / 0
    r = MlflowClient(tracking_uri).get_run(run_id)
    assert r.info.status == "FAILED"
    assert r.data.metrics["before/crash"] == 1.0  # what was recorded before the crash stays
    assert r.data.tags["rlpipe.error"].startswith("ZeroDivisionError")
    text = mlflow.artifacts.load_text(f"runs:/{run_id}/error/traceback.txt")
    assert "1 / 0" in text


def test_params_are_flattened_and_lists_kept_as_json(tracking_uri):
    exp = ensure_experiment(tracking_uri, "exp")
    with runs.job_run(exp, "p", {}) as run_id:
        runs.log_params({"env": {"stake": 0.1, "kind": "management"}, "net": [64, 64]})
    p = MlflowClient(tracking_uri).get_run(run_id).data.params
    assert p == {"env.stake": "0.1", "env.kind": "management", "net": "[64, 64]"}


def test_transition_moves_stage_and_alias_and_records_history(tracking_uri):
    exp = ensure_experiment(tracking_uri, "exp")
    versions = []
    for i in range(2):
        with runs.job_run(exp, f"m{i}", {}) as run_id:
            info = mlflow.pyfunc.log_model(
                name="policy", python_model=Constant(), pip_requirements=["mlflow"]
            )
            versions.append(registry.register(info.model_uri, "m", run_id, {"rlpipe.verdict": "retest"}))
    client = MlflowClient(tracking_uri)
    registry.transition("m", versions[0], "Staging", "challenger", "passed run gates")
    assert client.get_model_version("m", versions[0]).current_stage == "Staging"
    assert str(client.get_model_version_by_alias("m", "challenger").version) == versions[0]
    registry.transition("m", versions[1], "Staging", "challenger", "passed too")
    assert str(client.get_model_version_by_alias("m", "challenger").version) == versions[1]
    history = {
        k: v
        for k, v in client.get_model_version("m", versions[0]).tags.items()
        if k.startswith("rlpipe.transition.")
    }
    assert len(history) == 1 and "Staging @challenger" in next(iter(history.values()))
    assert "passed run gates" in next(iter(history.values()))
    assert client.get_model_version("m", versions[1]).tags["rlpipe.verdict"] == "retest"
