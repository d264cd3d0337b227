"""The store bound once per process and URI, MLflow's HTTP settings per client and per call, every
client the retrying one, and nothing changed in logging or the environment at import."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from rlpipe.errors import PolicyError, StoreUnavailable
from rlpipe.policy import pyfunc
from rlpipe.tracking import notebook_reads, store
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT

HTTP_VARS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
CALL_VARS = (*HTTP_VARS, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
"""What the client sets in the environment for one call of MLflow, and removes after it."""


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The URIs whose store was checked (`store.connect`: the sqlite schema under its lock, or a
    server's /health), one entry per check."""
    seen: list[str] = []
    connect = store.connect

    def counted(uri: str, *args):
        seen.append(uri)
        return connect(uri, *args)

    monkeypatch.setattr(store, "connect", counted)
    return seen


def test_every_tracker_and_read_of_a_uri_shares_one_client_checked_once(tmp_path, checks):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = TrackingConfig(uri=uri, experiment="exp")
    trackers = [Tracker.of(config), Tracker.of(config), Tracker(uri, "other"), Tracker(uri, "exp", 30, 30)]
    with trackers[0].run("r", {}) as run:
        run.log_metrics({"x": 1.0})
    assert notebook_reads.lineage_frame(uri, "exp").empty  # a notebook read of the same store
    assert checks == [uri]  # one check for the process, however many trackers and reads
    assert all(t.client is store.bind(uri) for t in trackers)
    assert isinstance(store.bind(uri), store.RetryingClient)


def test_two_uris_are_two_bindings_and_forgetting_them_checks_again(tmp_path, checks):
    a, b = f"sqlite:///{tmp_path}/a/mlflow.db", f"sqlite:///{tmp_path}/b/mlflow.db"
    first = Tracker(a, "exp").client
    assert Tracker(b, "exp").client is not first and Tracker(a, "exp").client is first
    assert checks == [a, b]
    store.unbind_all()
    assert Tracker(a, "exp").client is not first and checks == [a, b, a]


def test_a_check_that_fails_is_not_kept(tmp_path, monkeypatch):
    """A server not answering yet is refused, and checked again on the next bind, not remembered."""
    calls: list[str] = []

    def refuse(uri: str, timeout_s: int = 30) -> None:
        calls.append(uri)
        if len(calls) == 1:
            raise store.StoreError("no server yet")

    monkeypatch.setattr(store, "probe_server", refuse)
    with pytest.raises(store.StoreError):
        store.bind("http://127.0.0.1:9")
    assert isinstance(store.bind("http://127.0.0.1:9"), store.RetryingClient) and len(calls) == 2


class FakeServer:
    """An MLflow server as far as `get_experiment` goes: /health answers, and each API request gets
    the next of `answers` (an HTTP status; 200 is an experiment), `delay_s` late."""

    def __init__(self, answers: list[int], delay_s: float = 0.0) -> None:
        self.answers, self.delay_s, self.api_calls = answers, delay_s, 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    return self.reply(200, b"OK")
                fake.api_calls += 1
                time.sleep(fake.delay_s)
                status = fake.answers.pop(0) if fake.answers else 200
                exp = {"experiment_id": "0", "name": "Default", "lifecycle_stage": "active"}
                self.reply(status, json.dumps({"experiment": exp} if status == 200 else {}).encode())

            def reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server() -> Iterator[type[FakeServer]]:
    made: list[FakeServer] = []

    def make(answers: list[int], delay_s: float = 0.0) -> FakeServer:
        made.append(FakeServer(answers, delay_s))
        return made[-1]

    yield make  # type: ignore[misc]
    for server in made:
        server.close()


def test_a_server_answering_503_is_retried_by_the_client_not_by_mlflow(fake_server, monkeypatch, caplog):
    """MLflow's own retries are off during the call (each try is one request), so the client's loop
    owns the time: 503 twice, then the answer, after pauses 0.5 and 1 s."""
    for name in CALL_VARS:
        monkeypatch.delenv(name, raising=False)
    server = fake_server([503, 503])
    assert store.bind(server.uri, 10.0, 5).get_experiment("0").name == "Default"
    tries = [r.getMessage() for r in caplog.records if r.name == store.__name__]
    assert server.api_calls == 3 and len(tries) == 2
    assert "(the server answered HTTP 503: API request to" in tries[0] and "try 2 again in 0.5 s" in tries[0]
    assert "try 3 again in 1.0 s" in tries[1]
    assert not [name for name in CALL_VARS if name in os.environ]  # set for the call, then gone


def test_each_client_sends_its_own_request_timeout_and_the_users_value_wins(fake_server, monkeypatch):
    """Two stores bound in one process keep their own `tracking.timeout_s` (the first does not
    decide for the second); a value the user exported stays the user's."""
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    slow = fake_server([], delay_s=2.0)
    impatient, patient = store.bind(slow.uri, 0.0, 1), store.bind(slow.uri, 0.0, 5)
    with pytest.raises(StoreUnavailable, match=r"\(no answer within 1 s \(tracking.timeout_s\): API request"):
        impatient.get_experiment("0")
    assert patient.get_experiment("0").name == "Default"
    with pytest.raises(StoreUnavailable, match=r"\(no answer within 1 s \(tracking.timeout_s\): API request"):
        impatient.get_experiment("0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    assert impatient.get_experiment("0").name == "Default"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "5"


def test_the_notebook_reads_and_the_policy_loader_use_the_bound_retrying_client(
    tmp_path, monkeypatch, checks
):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    handed: list[object] = []
    no_curves = pd.DataFrame({"role": []})
    monkeypatch.setattr(notebook_reads.queries, "load_json", lambda client, *_: handed.append(client) or {})
    curves = lambda c, *_, **__: handed.append(c) or no_curves  # noqa: E731
    monkeypatch.setattr(notebook_reads.queries, "equity_curves", curves)
    notebook_reads.run_reports(uri, ["r1"])
    notebook_reads.curves_frame(uri, ["r1"])
    assert handed == [store.bind(uri)] * 2
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with pytest.raises(PolicyError, match="no version of the registry"):
        pyfunc.recorded_sha256(tmp_path / "policy")
    assert checks == [uri]  # the loader asked the same binding; no second check


def test_no_code_of_the_package_builds_an_mlflow_client_but_the_store():
    """A bare `MlflowClient(...)` skips the retries and the store's check: only `store.py` makes one."""
    built = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "rlpipe").rglob("*.py"))
        if path.name != "store.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bMlflowClient\(", line)
    ]
    assert built == []


IMPORTS_NOTHING = """
import importlib, logging, os, pkgutil, sys, tempfile
import mlflow, mlflow.pyfunc, rlpipe, torch  # what they set up at their own import is theirs

def levels():
    loggers = logging.root.manager.loggerDict.items()
    return {n: x.level for n, x in loggers if isinstance(x, logging.Logger)} | {"": logging.root.level}

env, before = dict(os.environ), levels()
import rlpipe.tracking, rlpipe.policy
for package in (rlpipe.tracking, rlpipe.policy):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
after = levels()
changed = {n: (before.get(n, 0), level) for n, level in after.items() if level != before.get(n, 0)}
assert changed == {}, f"importing changed logger levels: {changed}"
assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items())

from rlpipe.tracking import store
client = store.bind(f"sqlite:///{tempfile.mkdtemp()}/mlflow.db")
client.search_experiments()
for name, level in store._QUIET.items():
    assert logging.getLogger(name).level == level, name
assert dict(os.environ) == env, "binding a store changed the environment"
print("ok")
"""


def test_importing_tracking_and_policy_changes_no_logger_level_and_no_environment_variable():
    """Their import changes neither; binding a store sets MLflow's log levels (`store._QUIET`) and
    still leaves the environment as it was."""
    env = {k: v for k, v in os.environ.items() if k not in CALL_VARS}
    command = [sys.executable, "-c", IMPORTS_NOTHING]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
