"""Resume is exact and owned: a killed-and-resumed job ends bit for bit where the uninterrupted one
does; a live copy of a job is refused; a job killed before its first state reopens its own run;
a dead predecessor is closed by the next attempt."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from mlflow.tracking import MlflowClient

import rlpipe.jobs.checkpoints as checkpoints
import rlpipe.jobs.train_job as train_job
from rlpipe.errors import JobBusyError, Terminated
from rlpipe.jobs.checkpoints import JobFolder
from rlpipe.jobs.job_owner import read_owner
from rlpipe.jobs.spec import RunContext, as_config, config_hash
from rlpipe.jobs.train_job import run_train
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.process import process_token
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT

ROLLOUT = 4096  # the smoke preset's PPO rollout
JOB = ["seed=3", f"timesteps={4 * ROLLOUT}", f"checkpoint.every={ROLLOUT}", f"lengths=[{2 * ROLLOUT}]"]
CLOCK = ("curve/time/", "time/")  # wall-clock bookkeeping (seconds, fps, SB3's per-call iteration count)


def _weights(uri: str, run_id: str) -> dict[str, torch.Tensor]:
    tracker = Tracker(uri, "rlpipe")
    version = tracker.client.get_run(run_id).data.tags[T.MODEL_VERSION]
    return load_policy(
        tracker, resolve_model(tracker, f"models:/rlpipe-policy/{version}")
    ).net.policy.state_dict()


def _metrics(uri: str, run_id: str) -> dict[str, float]:
    metrics = MlflowClient(uri).get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if not k.startswith(CLOCK)}


def _history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key)]


def _kill_after_saves(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    """Stop the job like SIGTERM does, right after its `saves`-th saved state."""
    real, count = checkpoints.JobFolder.save, [0]

    def save(self, *args, **kwargs):
        real(self, *args, **kwargs)
        count[0] += 1
        if count[0] == saves:
            raise Terminated("killed by SIGTERM")

    monkeypatch.setattr(checkpoints.JobFolder, "save", save)


def test_a_killed_and_resumed_run_ends_bit_for_bit_as_the_uninterrupted_run(
    smoke_job, compose_cfg, tmp_path, monkeypatch
):
    whole_uri = f"sqlite:///{tmp_path}/whole/mlflow.db"
    whole = run_train(smoke_job(*JOB, f"tracking.uri={whole_uri}", f"checkpoint.dir={tmp_path}/ck-whole"),
                      RunContext(root=ROOT))  # fmt: skip
    job = smoke_job(*JOB)
    _kill_after_saves(monkeypatch, 3)  # states at 1, 2 (a scored length) and 3 rollouts
    with pytest.raises(Terminated):
        run_train(job, RunContext(root=ROOT))
    monkeypatch.undo()
    resumed = run_train(smoke_job(*JOB, "resume=true"), RunContext(root=ROOT))
    uri = job.tracking.uri
    tags = MlflowClient(uri).get_run(resumed.run_id).data.tags
    assert int(tags[T.RESUMED_FROM]) == 3 * ROLLOUT
    assert _metrics(uri, resumed.run_id) == _metrics(whole_uri, whole.run_id)
    assert len(_metrics(uri, resumed.run_id)) > 50
    for key in ("curve/train/loss", "curve/rollout/ep_rew_mean", "curve/validation/sharpe"):
        assert _history(uri, resumed.run_id, key) == _history(whole_uri, whole.run_id, key)
    mine, theirs = _weights(uri, resumed.run_id), _weights(whole_uri, whole.run_id)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert resumed.test_total == whole.test_total and resumed.verdict == whole.verdict


def test_a_second_copy_of_a_live_job_is_refused_and_leaves_its_folder_alone(smoke_job, tmp_path):
    job = smoke_job("seed=5")
    store = f"{job.tracking.uri}|{job.tracking.experiment}"
    folder = JobFolder(tmp_path / "checkpoints", config_hash(as_config(job)), 5, store, job.run_name)
    folder.claim()  # the live owner (another open file description: flock conflicts even in-process)
    folder.record_run("run-of-the-owner")
    (folder.path / "state.pt").write_bytes(b"the owner's state")
    try:
        for again in (job, smoke_job("seed=5", "resume=true")):
            with pytest.raises(JobBusyError, match=r"already running \(process .*run-of-the-owner"):
                run_train(again, RunContext(root=ROOT))
    finally:
        folder.release()
    assert (folder.path / "state.pt").read_bytes() == b"the owner's state"
    assert Tracker(job.tracking.uri, "rlpipe").search("") == []  # nothing recorded


def test_a_job_killed_before_its_first_state_is_resumed_in_its_own_run(smoke_job, monkeypatch):
    def killed(*args, **kwargs):
        raise Terminated("killed by SIGTERM")

    monkeypatch.setattr(train_job, "record_data", killed)  # after its run opened, before training
    with pytest.raises(Terminated):
        run_train(smoke_job("seed=6"), RunContext(root=ROOT))
    monkeypatch.undo()
    tracker = Tracker(smoke_job().tracking.uri, "rlpipe")
    (first,) = tracker.search("")
    assert first.info.status == "KILLED"
    resumed = run_train(smoke_job("seed=6", "resume=true"), RunContext(root=ROOT))
    (run,) = tracker.search("")
    assert resumed.run_id == first.info.run_id == run.info.run_id and run.info.status == "FINISHED"
    assert run.data.tags[T.RESUMED_FROM] == "0"


def _running_run(job, token: str) -> str:
    """A RUNNING run of `job` as its process left it (opened by `token`)."""
    tracker = Tracker(job.tracking.uri, "rlpipe")
    tags = {T.KIND: T.JOB, T.CONFIG_HASH: config_hash(as_config(job)), T.SEED: str(job.seed)}
    with tracker.run(job.run_name, tags, end=False) as run:
        run.set_tags({T.PROCESS: token})
    return run.run_id


def test_a_dead_predecessor_is_closed_by_the_next_attempt_and_a_live_one_refuses_it(smoke_job):
    job = smoke_job("seed=7")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = _running_run(job, process_token(sleeper.pid))
        with pytest.raises(JobBusyError, match=f"already running as MLflow run {live}"):
            run_train(job, RunContext(root=ROOT))
    finally:
        sleeper.kill()
        sleeper.wait()
    result = run_train(job, RunContext(root=ROOT))  # its owner is gone now
    client = MlflowClient(job.tracking.uri)
    assert client.get_run(live).info.status == "KILLED"
    assert "marked KILLED by a new attempt of the same job" in client.get_run(live).data.tags[T.ERROR]
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_the_job_folder_names_its_owner_and_run_while_the_job_trains(smoke_job, monkeypatch, tmp_path):
    seen = {}

    def spy(run, data):
        folder = next(p for p in (tmp_path / "checkpoints").glob("*-s8-*") if p.is_dir())
        seen.update(read_owner(folder) or {}, run_id_now=run.run_id)

    monkeypatch.setattr(train_job, "record_data", spy)
    result = run_train(smoke_job("seed=8"), RunContext(root=ROOT))
    assert seen["run_id"] == seen["run_id_now"] == result.run_id
    assert seen["process"] == process_token()
    assert not [p for p in (tmp_path / "checkpoints").glob("*-s8-*") if p.is_dir()]  # nothing left
