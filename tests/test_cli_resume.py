"""A sweep interrupted by SIGTERM closes its runs as KILLED; the same command with resume=true
continues the killed job in its own run, reuses the finished one, and judges the whole sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking.tracker import Tracker
from tests.conftest import ROOT


def sweep_args(tmp, uri: str) -> list[str]:
    return [
        sys.executable, "-m", "rlpipe.train", "-m", "experiment=smoke", "seed=1,2", "timesteps=100000",
        "checkpoint.every=20480", "threads=1", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/multirun",
        f"checkpoint.dir={tmp}/checkpoints",
    ]  # fmt: skip


def wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow  # ~60 s of two CLI sweeps; kill -9 + resume is in the default suite (test_jobs_checkpoints)
def test_an_interrupted_sweep_is_closed_killed_and_resumed_by_the_same_command(tmp_path, tracking_uri):
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    proc = subprocess.Popen(
        sweep_args(tmp_path, tracking_uri), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    wait_for(lambda: list(tmp_path.glob("checkpoints/*-s2-*/checkpoint.json")) or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)  # during the second job: the first one has finished
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode()[-2000:]
    tracker = Tracker(tracking_uri, "rlpipe")
    status = {r.data.tags["rlpipe.kind"] + r.data.tags.get("rlpipe.seed", ""): r for r in tracker.search("")}
    assert status["job1"].info.status == "FINISHED" and status["job2"].info.status == "KILLED"
    assert status["sweep"].info.status == "KILLED"  # closed by its own process, not left RUNNING
    assert "resume=true" in status["sweep"].data.tags["rlpipe.error"]

    again = subprocess.run(
        [*sweep_args(tmp_path, tracking_uri), "resume=true"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-3000:]  # the old failure no longer counts
    runs = tracker.search("")
    assert len(runs) == 3  # no duplicate: the finished job reused, the killed one continued
    by_key = {r.data.tags["rlpipe.kind"] + r.data.tags.get("rlpipe.seed", ""): r for r in runs}
    assert by_key["job1"].info.run_id == status["job1"].info.run_id
    assert by_key["job2"].info.run_id == status["job2"].info.run_id
    assert (
        by_key["job2"].info.status == "FINISHED" and int(by_key["job2"].data.tags["rlpipe.resumed_from"]) > 0
    )
    assert by_key["sweep"].info.status == "FINISHED" and "rlpipe.error" not in by_key["sweep"].data.tags
    client = MlflowClient(tracking_uri)
    assert {r.data.tags.get("rlpipe.sweep_verdict") for r in runs if r.data.tags["rlpipe.kind"] == "job"} != {
        None
    }
    assert client.list_artifacts(by_key["sweep"].info.run_id, "sweep")
