"""Store faults: a fresh sqlite store touched by many processes at once, transient errors retried,
a tracking server that is not there refused within seconds, many writers into one registry."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import BAD_REQUEST, TEMPORARILY_UNAVAILABLE
from mlflow.tracking import MlflowClient
from sqlalchemy import event

from rlpipe.errors import StoreError, StoreUnavailable
from rlpipe.server.postgres import free_port
from rlpipe.tracking import store
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.stores import in_processes, sweep_step, worker


def test_processes_writing_into_a_fresh_store_at_once_lose_nothing(tmp_path):
    """3 processes x 2 jobs on a store none of them created: MLflow's schema set-up is not safe
    to run twice at once (without the lock most of them crash and the file can break for good)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    versions = in_processes(worker, [(uri, i, 2, str(tmp_path)) for i in range(3)])
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}  # none lost, no ghost
    flat = [v for vs in versions for v in vs]
    assert sorted(flat, key=int) == [str(v) for v in range(1, 7)]  # 6 unique versions
    assert len(client.search_model_versions("name='m'")) == 6


def test_two_sweep_steps_at_once_leave_one_champion_and_consistent_stages(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    versions = worker(uri, 0, 3, str(tmp_path))
    in_processes(sweep_step, [(uri, versions[0], versions[1:])] * 2)  # the same sweep judged twice
    registry = Registry(MlflowClient(uri), "m")
    assert registry.aliases() == {
        "champion": versions[0],
        "challenger": versions[1],
        "challenger-2": versions[2],
    }
    stages = {v: registry.version(v).current_stage for v in versions}
    assert stages == {versions[0]: "Production", versions[1]: "Staging", versions[2]: "Staging"}
    assert [m.name for m in registry.client.search_registered_models()] == ["m"]  # the lock is gone


class Clock:
    """time.monotonic and time.sleep for with_retries: a pause moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def sleep(self, s: float) -> None:
        self.pauses.append(s)
        self.now += s


def flaky(n_fail: int, exc: Exception, calls: list):
    def call():
        calls.append(1)
        if len(calls) <= n_fail:
            raise exc
        return "done"

    return call


def test_transient_errors_are_retried_with_backoff_within_the_time_budget(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(store.time, "sleep", clock.sleep)
    monkeypatch.setattr(store.time, "monotonic", lambda: clock.now)
    busy = MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE)
    calls: list = []
    assert store.with_retries(flaky(3, busy, calls), 30) == "done" and clock.pauses == [0.5, 1.0, 2.0]
    calls.clear(), clock.pauses.clear()
    with pytest.raises(StoreUnavailable) as gone:  # the budget spent: one user error naming the store
        store.with_retries(flaky(99, busy, calls), 2.0, "sqlite:///x/mlflow.db")
    assert len(calls) == 4 and clock.pauses == [0.5, 1.0, 0.5]  # the last pause is cut to the budget
    assert str(gone.value).startswith(
        "tracking.uri=sqlite:///x/mlflow.db: the store went away or turned read-only (database is locked); "
        "still failing after 4 tries in 2 s (tracking.retry_s=2); the runs this command could not close "
        "stay RUNNING until `python -m rlpipe.runs reap`"
    )
    assert gone.value.__cause__ is busy
    calls.clear()
    with pytest.raises(MlflowException, match="bad"):
        store.with_retries(flaky(1, MlflowException("bad", error_code=BAD_REQUEST), calls), 30)
    assert len(calls) == 1
    assert store.is_transient(PermissionError("read-only folder"))
    assert not store.is_transient(FileNotFoundError("gone"))  # a missing file does not come back


def read_only(tracker: Tracker) -> None:
    """From now on every write to the tracker's sqlite database fails as a read-only file does
    (SQLITE_READONLY, "attempt to write a readonly database"; chmod does not stop root)."""
    engine = tracker.client._tracking_client.store.engine
    event.listen(engine, "checkout", lambda dbapi, *_: dbapi.execute("PRAGMA query_only = ON"))
    engine.dispose()


def test_a_store_turned_read_only_mid_job_stops_it_within_the_budget_and_leaves_the_run_to_the_reaper(
    tmp_path, monkeypatch
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "exp", retry_s=1.0)
    pauses: list[float] = []
    sleep = time.sleep
    monkeypatch.setattr(store.time, "sleep", lambda s: (pauses.append(s), sleep(s)))
    with pytest.raises(StoreUnavailable) as gone, tracker.run("r", {"rlpipe.kind": "job"}) as run:
        read_only(tracker)
        run.log_metrics({"x": 1.0})
    assert f"tracking.uri={uri}: the store went away or turned read-only (" in str(gone.value)
    assert "attempt to write a readonly database" in str(gone.value)
    assert "`python -m rlpipe.runs reap`" in str(gone.value)
    assert sum(pauses) <= 1.0  # closing the run tried each call once, no second budget
    assert MlflowClient(uri).get_run(run.run_id).info.status == "RUNNING"  # the reaper's to close


def test_a_tracking_server_that_stops_mid_job_is_given_up_within_the_budget(monkeypatch):
    """A server that answered /health, then went away: MLflow's own HTTP retries (minutes) are off
    during the call and the environment is as it was after it."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    tracker = Tracker(uri, "exp", retry_s=1.0)
    server.shutdown()
    server.server_close()
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailable, match=rf"^tracking.uri={uri}: the store went away"):
        tracker.experiment_id()
    assert time.monotonic() - t0 < 10  # MLflow alone retries a refused connection for minutes
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ


def test_a_write_waits_out_a_database_held_by_another_process(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "exp")
    with tracker.run("r", {}) as run:
        blocker = sqlite3.connect(str(tmp_path / "mlflow.db"), isolation_level=None, check_same_thread=False)
        blocker.execute("BEGIN EXCLUSIVE")  # every writer now fails with "database is locked"
        release = threading.Timer(7.0, blocker.execute, args=("COMMIT",))
        release.start()
        t0 = time.monotonic()
        run.log_metrics({"x": 1.0})  # sqlite gives up after 5 s; the retry gets through
        waited = time.monotonic() - t0
        release.join()
    assert waited >= 5.0
    assert MlflowClient(uri).get_run(run.run_id).data.metrics == {"x": 1.0}


def test_a_server_that_is_not_running_is_refused_within_seconds():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(
        StoreError, match=rf"tracking.uri=http://127.0.0.1:{port}: no MLflow tracking server"
    ) as e:
        Tracker(f"http://127.0.0.1:{port}", "exp")
    assert time.monotonic() - t0 < 10 and "make server" in str(e.value)
