"""A trained job's registered policy served by `make serve` (`rlpipe.policy.serve`: its files
checked against the registry, then `mlflow models serve --env-manager local`, no venv on PATH)
answers a request over raw bars with the actions the backtest takes on the same bars and position,
answers its own logged serving example, refuses a short or bad request with rlpipe's message, and
is never started on a tampered policy."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.data.sources import load_data
from rlpipe.jobs.train_job import run_train
from rlpipe.policy import serve as policy_serve
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import CHAMPION, Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.policies import Payload, held_positions
from tests.support.project import CONF

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


def _post(url: str, body: dict | bytes) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _serve_cmd(uri: str, port: int) -> tuple[list[str], dict[str, str]]:
    """What `make serve MODEL=models:/rlpipe-policy@champion PORT=<port>` runs, with a PATH that does
    not hold the venv (the command must find mlflow's `uvicorn` without it)."""
    cmd = [sys.executable, "-m", "rlpipe.policy.serve", f"models:/{MODEL}@{CHAMPION}",
           "--tracking-uri", uri, "--port", str(port)]  # fmt: skip
    return cmd, {**os.environ, "PATH": os.defpath}


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
            pytest.fail(f"make serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def served(champion, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """`make serve` of models:/rlpipe-policy@champion; yields its URL and its log."""
    port, folder = _free_port(), tmp_path_factory.mktemp("served")
    cmd, env = _serve_cmd(champion[2], port)
    log = folder / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
        try:
            _wait_until_up(f"http://127.0.0.1:{port}", proc, log)
            yield f"http://127.0.0.1:{port}", log
        finally:
            proc.terminate()
            try:
                status = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert status == 128 + signal.SIGTERM
    checked = re.search(r"--data @(\S+)", log.read_text())
    assert checked and not Path(checked[1]).exists()  # the checked copy is removed with the server


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
    url = served[0]
    tracker = Tracker(tracking_uri, job.tracking.experiment)
    policy = load_policy(tracker, resolve_model(tracker, f"models:/{MODEL}@{CHAMPION}"))
    bars = load_data(job.data).drop(columns=["regime"]).iloc[13000:13150]
    position, obs = held_positions(bars, policy.stats, job.env, job.data.spread_bps)
    frame = bars.join(position).fillna(0.0).reset_index(names="timestamp")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}
    status, answer_json = _post(f"{url}/invocations", body)
    assert status == 200
    answer = pd.DataFrame(answer_json["predictions"]).set_index(bars.index)

    warm = np.arange(len(bars)) < policy.meta["warmup_bars"]
    np.testing.assert_array_equal(answer["warmup"], warm)
    assert (answer["action"][warm] == -1).all()
    held = answer.loc[position.index]
    live = ~held["warmup"].to_numpy()
    backtest = policy.observation_policy()(obs)  # what evaluate_job's backtest does on these rows
    np.testing.assert_array_equal(held["action"].to_numpy()[live], backtest[live])
    assert live.sum() > 90 and len(np.unique(backtest[live])) > 1
    in_process = policy.predict(bars.join(position).fillna(0.0))
    np.testing.assert_array_equal(answer["action"], in_process["action"])


def test_the_logged_serving_example_posted_as_make_serve_says_gets_an_action_per_bar(served):
    url, log = served
    line = re.search(r"try: curl -s (\S+) -H 'Content-Type: application/json' --data @(\S+)", log.read_text())
    assert line and line[1] == f"{url}/invocations" and line[2].endswith("/serving_input_example.json")
    status, answer = _post(line[1], Path(line[2]).read_bytes())
    assert status == 200
    out = pd.DataFrame(answer["predictions"])
    assert out["warmup"].tolist() == [True] * 48 + [False] * 8  # the warm-up, then 8 bars acted on
    assert (out["action"][:48] == -1).all() and set(out["action"][48:]) <= {0, 1, 2}


def test_a_short_or_bad_request_is_refused_with_rlpipes_message(served, champion):
    """HTTP 400 whose `message` says what was wrong, not MLflow's generic BAD_REQUEST."""
    bars = load_data(champion[0].data).drop(columns=["regime"]).iloc[13000:13400]
    frame = bars.reset_index(names="timestamp")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    short, sparse, flip = frame.iloc[:30], frame.iloc[::4], frame.assign(side=2.0)
    for rows, message in (
        (short, "policy input: 30 bars, but the first 48 bars of a request only warm up the features"),
        (sparse, "policy input: bars are 4 h apart (median) but the policy was trained on 1 h bars"),
        (flip, "policy input: column 'side' must be -1, 0 or 1, got 2 at"),
    ):
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        status, answer = _post(f"{served[0]}/invocations", body)
        assert (status, answer["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert message in answer["message"]


def test_make_serve_refuses_a_policy_whose_mlmodel_was_rewritten_before_mlflow_reads_it(
    champion, tmp_path, caplog
):
    """MLflow reads MLmodel before any loader runs: a rewritten one could name another loader (one that
    unpickles `python_model.pkl`). `make serve` checks every file against the registry first."""
    _, result, uri = champion
    folder = Path(
        urlparse(MlflowClient(uri).get_model_version_download_uri(MODEL, result.model_version)).path
    )
    mlmodel = folder / "MLmodel"
    original = mlmodel.read_bytes()
    marker = tmp_path / "pwned"
    try:
        spec = yaml.safe_load(original)  # what makes stock mlflow.pyfunc.load_model run the payload
        flavor = spec["flavors"]["python_function"]
        del flavor["data"]
        flavor.update(loader_module="mlflow.pyfunc.model", python_model="python_model.pkl")
        mlmodel.write_text(yaml.safe_dump(spec))
        (folder / "python_model.pkl").write_bytes(pickle.dumps(Payload(marker)))
        status = policy_serve.main(_serve_cmd(uri, _free_port())[0][3:])  # in-process: no server starts
    finally:
        mlmodel.write_bytes(original)
        (folder / "python_model.pkl").unlink(missing_ok=True)
    assert status == 2 and not marker.exists()
    assert f"error: refusing policy models:/{MODEL}@{CHAMPION}: MLmodel: sha256" in caplog.text
