"""A sweep interrupted by SIGTERM closes its runs as KILLED; the same command with resume=true
continues the killed job in its own run, reuses the finished one, and judges the whole sweep."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking.process import process_alive
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT, wait_for


def sweep_args(tmp, uri: str) -> list[str]:
    return [
        sys.executable, "-m", "rlpipe.train", "-m", "experiment=smoke", "seed=1,2", "timesteps=100000",
        "checkpoint.every=20480", "threads=1", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/multirun",
        f"checkpoint.dir={tmp}/checkpoints",
    ]  # fmt: skip


@pytest.mark.slow  # ~60 s of two CLI sweeps; kill -9 + resume is in the default suite (jobs/test_checkpoints)
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


@pytest.mark.slow  # ~2 min: a joblib sweep killed -9, its workers stopping, and the rerun
def test_the_workers_of_a_killed_joblib_sweep_stop_and_the_rerun_resumes_their_runs(tmp_path, tracking_uri):
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    args = [
        *(a for a in sweep_args(tmp_path, tracking_uri) if not a.startswith("timesteps=")),
        "timesteps=600000", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
    ]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(
        lambda: len(list(tmp_path.glob("checkpoints/*/checkpoint.json"))) == 2 or proc.poll() is not None
    )
    os.kill(proc.pid, signal.SIGKILL)  # the launcher dies; its loky workers are orphans now
    proc.wait()
    tracker = Tracker(tracking_uri, "rlpipe")
    jobs = "tags.`rlpipe.kind` = 'job'"
    wait_for(lambda: {r.info.status for r in tracker.search(jobs)} == {"KILLED"}, timeout=60)
    owners = [r.data.tags["rlpipe.process"] for r in tracker.search(jobs)]
    wait_for(lambda: not any(process_alive(t) for t in owners), timeout=90)  # no orphan trains on

    again = subprocess.run([*args, "resume=true"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Warning" not in again.stderr, again.stderr[-3000:]  # the workers start as quietly as they run
    runs = tracker.search(jobs)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(int(r.data.tags["rlpipe.resumed_from"]) > 0 for r in runs)


@pytest.mark.slow  # ~30 s: a job and a second copy of it started while it trains
def test_a_second_copy_of_a_running_job_is_refused_with_one_line_naming_its_owner(tmp_path, tracking_uri):
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    args = [
        sys.executable, "-m", "rlpipe.train", "experiment=smoke", "seed=4", "timesteps=5000000",
        "checkpoint.every=20480", "threads=1", f"tracking.uri={tracking_uri}",
        f"checkpoint.dir={tmp_path}/checkpoints", f"hydra.run.dir={tmp_path}/run",
    ]  # fmt: skip
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: list(tmp_path.glob("checkpoints/*/checkpoint.json")) or first.poll() is not None)
        for extra in ([], ["resume=true"]):
            second = subprocess.run([*args, *extra], cwd=ROOT, env=env, capture_output=True, text=True)
            assert second.returncode == 2, second.stderr[-2000:]
            lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
            assert len(lines) == 1 and f":{first.pid}:" in lines[0] and "already running" in lines[0]
        assert first.poll() is None and list(tmp_path.glob("checkpoints/*/state-*.pt"))  # untouched
    finally:
        first.kill()
        first.wait()
    runs = Tracker(tracking_uri, "rlpipe").search("")
    assert len(runs) == 1  # the copies opened no run
