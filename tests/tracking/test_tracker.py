"""The tracker: one store per tracker, runs FINISHED or FAILED with the traceback, params, artifacts."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker, artifact_root, flatten


def test_experiment_is_created_once_with_artifacts_beside_the_db(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    first = tracker.experiment_id()
    assert Tracker(tracking_uri, "exp").experiment_id() == first
    exp = MlflowClient(tracking_uri).get_experiment(first)
    assert exp.artifact_location == artifact_root(tracking_uri)
    assert exp.artifact_location.endswith("/mlruns/artifacts")


def test_reading_creates_nothing(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    assert tracker.find_experiment_id() is None and tracker.parent_run("s") is None
    assert MlflowClient(tracking_uri).get_experiment_by_name("exp") is None


def test_crashing_run_is_failed_with_its_traceback(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    with pytest.raises(ZeroDivisionError), tracker.run("boom", {"rlpipe.sweep_id": "s"}) as run:
        run.log_metrics({"before/crash": 1.0})
        _ = 1 / 0
    r = MlflowClient(tracking_uri).get_run(run.run_id)
    assert r.info.status == "FAILED"
    assert r.data.metrics["before/crash"] == 1.0  # what was recorded before the crash stays
    assert r.data.tags["rlpipe.error"].startswith("ZeroDivisionError")
    assert "1 / 0" in mlflow.artifacts.load_text(f"{r.info.artifact_uri}/error/traceback.txt")


def test_finished_run_carries_its_tags_and_the_users_identity(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    with tracker.run("ok", {"rlpipe.kind": "job"}) as run:
        assert run.tags == {"rlpipe.kind": "job"}
    r = MlflowClient(tracking_uri).get_run(run.run_id)
    assert r.info.status == "FINISHED" and r.info.run_name == "ok"
    assert r.data.tags["rlpipe.kind"] == "job" and r.data.tags["mlflow.user"]


def test_params_are_flattened_and_lists_kept_as_json(tracking_uri):
    assert flatten({"a": {"b": {"c": 1}}, "l": (1, 2)}) == {"a.b.c": 1, "l": "[1, 2]"}
    with Tracker(tracking_uri, "exp").run("p", {}) as run:
        run.log_params({"env": {"stake": 0.1, "kind": "management"}, "net": [64, 64]})
    p = MlflowClient(tracking_uri).get_run(run.run_id).data.params
    assert p == {"env.stake": "0.1", "env.kind": "management", "net": "[64, 64]"}


def test_a_mapping_with_keys_mlflow_cannot_name_is_logged_as_its_json(tracking_uri):
    columns = {"<TICKVOL>": "volume", "Eröffnung": "open", "Px Last (USD)": "close"}
    assert flatten({"data": {"columns": columns, "dayfirst": True}}) == {
        "data.columns": '{"<TICKVOL>": "volume", "Eröffnung": "open", "Px Last (USD)": "close"}',
        "data.dayfirst": True,
    }
    assert flatten({"data": {"columns": {"Eröffnung": "open"}}}) == {"data.columns.Eröffnung": "open"}
    with Tracker(tracking_uri, "exp").run("c", {}) as run:
        run.log_params({"data": {"columns": columns}})
    params = MlflowClient(tracking_uri).get_run(run.run_id).data.params
    assert json.loads(params["data.columns"]) == columns


def test_artifacts_land_in_the_run(tracking_uri, tmp_path):
    (tmp_path / "a.png").write_bytes(b"png")
    with Tracker(tracking_uri, "exp").run("a", {}) as run:
        run.log_text("hello", "report/report.md")
        run.log_dict({"x": 1}, "report/report.json")
        run.log_table(pd.DataFrame({"bar": [0, 1], "equity": [1.0, 1.1]}), "curves/equity.parquet")
        run.log_files([tmp_path / "a.png"], "plots")
        run.log_metric_series([("train/loss", 0.5, 10), ("train/loss", 0.25, 20)])
    client = MlflowClient(tracking_uri)
    uri = client.get_run(run.run_id).info.artifact_uri
    assert mlflow.artifacts.load_text(f"{uri}/report/report.md") == "hello"
    assert mlflow.artifacts.load_dict(f"{uri}/report/report.json") == {"x": 1}
    assert [f.path for f in client.list_artifacts(run.run_id, "plots")] == ["plots/a.png"]
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "train/loss")] == [
        (10, 0.5),
        (20, 0.25),
    ]


def test_two_trackers_in_one_process_write_to_their_own_stores(tmp_path):
    a, b = Tracker(f"sqlite:///{tmp_path}/a/m.db", "exp"), Tracker(f"sqlite:///{tmp_path}/b/m.db", "exp")
    with a.run("in-a", {}) as ra, b.run("in-b", {}) as rb:
        ra.log_metrics({"x": 1.0})
        rb.log_metrics({"x": 2.0})
    assert [r.info.run_name for r in a.client.search_runs([a.experiment_id()])] == ["in-a"]
    assert [r.info.run_name for r in b.client.search_runs([b.experiment_id()])] == ["in-b"]
    assert mlflow.active_run() is None  # no global run was opened


def test_parent_run_is_created_once_and_finished_on_request(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    parent = tracker.ensure_parent_run("s1")
    assert tracker.ensure_parent_run("s1") == parent == tracker.parent_run("s1")
    run = tracker.client.get_run(parent)
    assert run.info.status == "RUNNING" and run.data.tags["rlpipe.kind"] == "sweep"
    tracker.finish(parent)
    assert tracker.client.get_run(parent).info.status == "FINISHED"


@pytest.mark.parametrize("first", ["rlpipe.tracking.tracker", "rlpipe.policy.logged", "rlpipe.server"])
def test_mlflow_telemetry_is_off_unless_the_user_turns_it_on(first):
    """Whichever package of rlpipe a process reaches MLflow through first, MLflow starts no
    telemetry client (`rlpipe.server` hands this environment to the `mlflow server` it starts)."""
    import os
    import subprocess
    import sys

    code = (
        f"import {first}, os, mlflow.telemetry as t; "
        "print(os.environ['MLFLOW_DISABLE_TELEMETRY'], t.get_telemetry_client() is None)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_DISABLE_TELEMETRY"}
    for given, expect in ((None, "true True"), ("false", "false")):
        run_env = env if given is None else {**env, "MLFLOW_DISABLE_TELEMETRY": given}
        out = subprocess.run(
            [sys.executable, "-c", code], env=run_env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip().startswith(expect)


class FakeRay:
    """What `ray_node_id` reads of an imported `ray`: whether it is initialised and its runtime context."""

    def __init__(self, task_id: str | None, node_id: str = "node-b") -> None:
        self.context = SimpleNamespace(get_task_id=lambda: task_id, get_node_id=lambda: node_id)

    def is_initialized(self) -> bool:
        return True

    def get_runtime_context(self) -> SimpleNamespace:
        return self.context


def test_a_run_opened_inside_a_ray_task_records_its_node_and_a_driver_records_none(tracking_uri, monkeypatch):
    tracker = Tracker(tracking_uri, "exp")
    monkeypatch.setitem(sys.modules, "ray", FakeRay(task_id="task-1"))
    with tracker.run("in-task", {}) as in_task:
        pass
    monkeypatch.setitem(sys.modules, "ray", FakeRay(task_id=None))  # the launching process: a driver
    with tracker.run("in-driver", {}) as in_driver:
        pass
    client = MlflowClient(tracking_uri)
    assert client.get_run(in_task.run_id).data.tags[T.RAY_NODE] == "node-b"
    assert T.RAY_NODE not in client.get_run(in_driver.run_id).data.tags


def test_a_process_without_ray_records_no_node_and_never_imports_ray(tracking_uri):
    code = (
        "import sys; from rlpipe.tracking.tracker import Tracker\n"
        f"with Tracker({tracking_uri!r}, 'exp').run('plain', {{}}) as run: pass\n"
        "assert 'ray' not in sys.modules, 'opening a run imported ray'\n"
        "print(run.run_id)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    tags = MlflowClient(tracking_uri).get_run(proc.stdout.split()[-1]).data.tags
    assert T.PROCESS in tags and T.RAY_NODE not in tags


def test_a_tracker_looks_its_experiment_and_a_sweeps_parent_up_once(tracking_uri, monkeypatch):
    tracker = Tracker(tracking_uri, "exp")
    assert (
        tracker.find_experiment_id() is None and tracker.parent_run("s") is None
    )  # nothing found: asked again
    parent = tracker.ensure_parent_run("s")
    calls = {"experiment": 0, "search": 0}

    def counted(name, fn):
        def call(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(
        tracker.client, "get_experiment_by_name", counted("experiment", tracker.client.get_experiment_by_name)
    )
    monkeypatch.setattr(tracker.client, "search_runs", counted("search", tracker.client.search_runs))
    assert [tracker.parent_run("s") for _ in range(3)] == [parent] * 3
    assert (
        tracker.parent("s").info.run_id == parent
    )  # the run itself, its tags as they are now, is read each time
    assert tracker.find_experiment_id() == tracker.experiment_id()
    assert calls == {"experiment": 0, "search": 2}
