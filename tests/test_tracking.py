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


def _versions(tracking_uri: str, n: int, sweep_id: str) -> list[str]:
    exp = ensure_experiment(tracking_uri, "exp")
    out = []
    for i in range(n):
        with runs.job_run(exp, f"{sweep_id}-{i}", {}) as run_id:
            info = mlflow.pyfunc.log_model(
                name="policy", python_model=Constant(), pip_requirements=["mlflow"]
            )
            out.append(registry.register(info.model_uri, "m", run_id, {"rlpipe.sweep_id": sweep_id}))
    return out


def _state(client: MlflowClient) -> dict[str, tuple[str, tuple[str, ...], int]]:
    return {
        str(v.version): (
            v.current_stage,
            tuple(sorted(client.get_model_version("m", v.version).aliases)),
            sum(k.startswith("rlpipe.transition.") for k in v.tags),
        )
        for v in client.search_model_versions("name='m'")
    }


def test_sweep_promotion_is_idempotent_and_archives_the_previous_champion(tracking_uri):
    client = MlflowClient(tracking_uri)
    first = _versions(tracking_uri, 2, "s1")
    why = {v: "test" for v in first}
    registry.apply_sweep("m", "s1", first[0], [first[1]], why)
    once = _state(client)
    assert once[first[0]][:2] == ("Production", ("champion",))
    assert once[first[1]][:2] == ("Staging", ("challenger",))
    registry.apply_sweep("m", "s1", first[0], [first[1]], why)  # the same decision again
    assert _state(client) == once  # nothing moved, no new transition recorded

    second = _versions(tracking_uri, 1, "s2")
    registry.apply_sweep("m", "s2", second[0], [], {second[0]: "better"})
    after = _state(client)
    assert after[second[0]][:2] == ("Production", ("champion",))
    assert after[first[0]][0] == "Archived"
    assert client.get_model_version("m", second[0]).tags["rlpipe.previous_champion"] == first[0]


def test_rollback_restores_the_previous_champion(tracking_uri):
    client = MlflowClient(tracking_uri)
    a, b = _versions(tracking_uri, 2, "s")
    registry.apply_sweep("m", "s", a, [], {a: "first"})
    with pytest.raises(mlflow.exceptions.MlflowException, match="first champion"):
        registry.rollback("m")
    registry.apply_sweep("m", "s", b, [], {b: "second"})
    restored, retired = registry.rollback("m")
    assert (restored, retired) == (a, b)
    assert registry.alias_version("m", "champion") == a
    assert client.get_model_version("m", a).current_stage == "Production"
    assert client.get_model_version("m", b).current_stage == "Archived"
    assert any("rollback" in text for _, _, text in registry.history("m", [a, b]))


def test_staged_version_whose_configuration_failed_goes_back_to_none(tracking_uri):
    client = MlflowClient(tracking_uri)
    (v,) = _versions(tracking_uri, 1, "s")
    registry.transition("m", v, "Staging", "challenger", "passed run gates")
    registry.apply_sweep("m", "s", None, [], {v: "sweep: reject (failed: seed_stability)"})
    assert client.get_model_version("m", v).current_stage == "None"
    assert registry.alias_version("m", "challenger") is None
