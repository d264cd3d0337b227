"""A trained job's registered policy served with `mlflow models serve` (local env, no network) answers a
request over raw bars with the actions the backtest takes on the same bars and position."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.jobs.train_job import run_train
from rlpipe.tracking import tags as T
from rlpipe.tracking.policy import load_policy, resolve_model
from rlpipe.tracking.registry import CHAMPION, Registry
from rlpipe.tracking.tracker import Tracker
from tests.conftest import CONF
from tests.test_tracking_policy import held_positions

MODEL = "rlpipe-policy"


@pytest.fixture(scope="module")
def champion(tmp_path_factory):
    """A smoke job trained and registered through `run_train`, made @champion by hand; (job, result, uri)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('serve')}/mlflow.db"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", "device=cpu", "seed=2", f"tracking.uri={uri}"])
    job = train_job(cfg)
    result = run_train(job)
    Registry(MlflowClient(uri), MODEL).transition(result.model_version, "Production", CHAMPION, "test")
    return job, result, uri


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mlflow models serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture
def served(champion, tmp_path) -> Iterator[str]:
    """`mlflow models serve -m models:/rlpipe-policy@champion --env-manager local`; yields its URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL}@{CHAMPION}",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    venv_bin = os.path.dirname(sys.executable)  # mlflow starts `uvicorn` from PATH, as in an activated venv
    path = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "MLFLOW_TRACKING_URI": champion[2], "MLFLOW_REGISTRY_URI": champion[2]}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        # Its own process group: the CLI and the uvicorn server it starts are ended together.
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                                start_new_session=True)  # fmt: skip
        try:
            _wait_until_up(f"http://127.0.0.1:{port}", proc, log)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_the_version_and_its_run_record_the_policy_sha256(champion):
    _, result, tracking_uri = champion
    client = MlflowClient(tracking_uri)
    version = client.get_model_version(MODEL, result.model_version)
    digest = version.tags[T.POLICY_SHA256]
    assert len(digest) == 64 and client.get_run(result.run_id).data.tags[T.POLICY_SHA256] == digest
    tracker = Tracker(tracking_uri, "rlpipe")
    assert resolve_model(tracker, f"runs:/{result.run_id}/policy").sha256 == digest  # the logged model's


def test_served_policy_answers_raw_bars_with_the_backtest_actions(served, champion):
    """Bars plus the position of envs held long, short or flat: the server acts as the backtest does."""
    job, _, tracking_uri = champion
    tracker = Tracker(tracking_uri, job.tracking.experiment)
    policy = load_policy(tracker, resolve_model(tracker, f"models:/{MODEL}@{CHAMPION}"))
    bars = job.data.load().drop(columns=["regime"]).iloc[13000:13150]
    position, obs = held_positions(bars, policy.stats, job.env, job.data.spread_bps)
    frame = bars.join(position).fillna(0.0).reset_index(names="timestamp")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    answer = pd.DataFrame(_post(f"{served}/invocations", body)["predictions"]).set_index(bars.index)

    warm = np.arange(len(bars)) < policy.meta["warmup_bars"]
    np.testing.assert_array_equal(answer["warmup"], warm)
    assert (answer["action"][warm] == -1).all()
    held = answer.loc[position.index]
    live = ~held["warmup"].to_numpy()
    backtest = policy.observation_policy()(obs)  # what evaluate_job's backtest does on these rows
    np.testing.assert_array_equal(held["action"].to_numpy()[live], backtest[live])
    assert live.sum() > 90 and len(np.unique(backtest[live])) > 1
    in_process = policy.predict(None, bars.join(position).fillna(0.0))
    np.testing.assert_array_equal(answer["action"], in_process["action"])
