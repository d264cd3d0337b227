"""Checkpoints along a run: lengths scored on validation, one kept and tested; resume after a kill;
finished jobs reused on a rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.data.sources import load_data
from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.evaluation import assessment
from rlpipe.jobs.checkpoints import JobFolder
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.sweep_job import current_rows, run_sweep_step
from rlpipe.jobs.train_job import run_train
from rlpipe.tracking import queries
from rlpipe.tracking.reaper import reap
from rlpipe.tracking.rows import JobRow
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT, drawn_plots

ROLLOUT = 4096  # the smoke preset's PPO rollout: 64 envs x 64 steps


def test_three_checkpoints_are_scored_on_validation_and_only_the_kept_one_is_tested(
    smoke_job, tracking_uri, monkeypatch
):
    calls: list[set[str]] = []
    real = assessment.backtest

    def spy(market, cfg, windows, *args, **kwargs):
        calls.append({w.slice.role for w in windows})
        return real(market, cfg, windows, *args, **kwargs)

    monkeypatch.setattr(assessment, "backtest", spy)
    job = smoke_job(f"timesteps={3 * ROLLOUT}", f"lengths=[{ROLLOUT},{2 * ROLLOUT}]", "plots=true")
    result = run_train(job)
    assert calls[:3] == [{"validation"}] * 3  # one validation pass per length (the last included)
    assert sum("test" in roles for roles in calls) == 1  # the test slices: once, for the kept policy
    client = MlflowClient(tracking_uri)
    curve = client.get_metric_history(result.run_id, "curve/validation/sharpe_mean")
    assert [m.step for m in sorted(curve, key=lambda m: m.step)] == [ROLLOUT, 2 * ROLLOUT, 3 * ROLLOUT]
    run = client.get_run(result.run_id)
    best = max(m.value for m in curve)
    kept = int(run.data.tags["rlpipe.selected_timesteps"])
    kept_score = next(m.value for m in curve if m.step == kept)
    assert kept_score >= best - 0.05 * abs(best)
    assert all(m.value < best - 0.05 * abs(best) for m in curve if m.step < kept)  # the earliest such
    assert run.data.tags["rlpipe.checkpoint_candidates"] == "3"
    assert run.data.metrics["validation/sharpe_mean"] == pytest.approx(kept_score)  # it is what was tested
    report = (Path(client.download_artifacts(result.run_id, "report/report.md"))).read_text()
    assert "## Training length" in report and f"Kept {kept} steps" in report
    # the checkpoint at ROLLOUT is exactly the policy a run of that length ends with (same seed)
    short = run_train(smoke_job(f"timesteps={ROLLOUT}"))
    assert next(m.value for m in curve if m.step == ROLLOUT) == short.validation_score
    assert "plots/training_length.png" in drawn_plots(tracking_uri, result.run_id)


def test_lengths_beyond_timesteps_and_bad_tolerances_are_refused_before_a_run(smoke_job, tracking_uri):
    with pytest.raises(ConfigError, match=r"lengths=\[9000\].*timesteps=512"):
        run_train(smoke_job("lengths=[9000]"))
    with pytest.raises(ConfigError, match=r"gates\.checkpoint_tolerance"):
        run_train(smoke_job("gates.checkpoint_tolerance=1.5"))
    assert Tracker(tracking_uri, "rlpipe").search("") == []


def test_a_corrupt_or_foreign_checkpoint_is_refused_with_the_file_named(smoke_job, tmp_path):
    job = smoke_job(f"timesteps={4 * ROLLOUT}", f"checkpoint.every={ROLLOUT}")
    folder = JobFolder(tmp_path / "ck", "abc", 1, "store")
    from rlpipe.agents.checkpoint_io import read_state, save_state

    agent = job.agent.build(_venv(), 1, "cpu")
    sha = save_state(agent, folder.write_state)
    state = folder.state_file(sha)
    assert read_state(state, sha)["num_timesteps"] == 0
    state.write_bytes(state.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match=rf"{state.name} is corrupt"):
        read_state(state, sha)
    state.unlink()
    (folder.path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"checkpoint\.json is unreadable"):
        folder.read()


def _venv():
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.vec_env import DummyVecEnv

    class Tiny(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            return np.zeros(3, np.float32), {}

        def step(self, action):
            return np.zeros(3, np.float32), 0.0, False, False, {}

    return DummyVecEnv([Tiny])


def test_a_state_written_but_not_yet_named_leaves_the_named_one_whole(smoke_job, tmp_path):
    """A process killed after writing its next state and before the manifest names it (the worker
    of a killed joblib sweep): the manifest's state is still the one its checksum says."""
    from rlpipe.agents.checkpoint_io import read_state
    from rlpipe.jobs.checkpoints import save_agent
    from rlpipe.jobs.state_folder import Saved

    folder = JobFolder(tmp_path / "ck", "abc", 1, "store")
    agent = smoke_job().agent.build(_venv(), 1, "cpu")
    save_agent(folder, agent, Saved("run-1", 0, None))
    agent.num_timesteps = 4096
    agent.policy.optimizer.param_groups[0]["lr"] = 0.5  # the next state's bytes differ
    save_agent(folder, agent, Saved("run-1", 0, None))
    named = folder.read()
    assert named is not None and named.num_timesteps == 4096
    agent.num_timesteps = 8192
    folder.write_state(lambda f: f.write(b"the next state, its manifest never written"))
    for leftover in (".state.new-99", "..state.new-99.tmp-99"):  # a writer killed mid-write
        (folder.path / leftover).write_bytes(b"half a state")
    sha = str(named.state_sha256)
    assert read_state(folder.state_file(sha), sha)["num_timesteps"] == 4096
    save_agent(folder, agent, Saved("run-1", 0, None))
    kept = folder.read()
    assert kept is not None and kept.num_timesteps == 8192
    assert [p.name for p in folder.path.glob("*state*")] == [folder.named(str(kept.state_sha256)).name]


def test_a_finished_job_is_reused_on_a_rerun_and_counted_in_the_new_sweep(smoke_job, tracking_uri):
    first = run_train(smoke_job("seed=4"), RunContext(sweep_id="sweep-a", root=ROOT))
    again = run_train(smoke_job("seed=4"), RunContext(sweep_id="sweep-b", root=ROOT))
    assert again.run_id == first.run_id and again.model_version == first.model_version
    assert again.validation_score == first.validation_score
    tracker = Tracker(tracking_uri, "rlpipe")
    assert [r.run_id for r in queries.job_rows(tracker, "sweep-b")] == [first.run_id]
    forced = run_train(smoke_job("seed=4", "force=true"), RunContext(sweep_id="sweep-b", root=ROOT))
    assert forced.run_id != first.run_id
    rows = queries.job_rows(tracker, "sweep-b")
    assert [r.run_id for r in current_rows(rows)] == [forced.run_id]  # one run per job, the newest
    outcome = run_sweep_step(smoke_job().tracking, smoke_job().gates, "sweep-b")
    assert [r.run_id for r in outcome.rows] == [forced.run_id] and not outcome.failed


def row(run_id: str, status: str, seed: int = 1) -> JobRow:
    return JobRow(run_id, run_id, status, seed, "h", "l", 1, "ppo", "m", "pnl", "-", "", "", "", (), "", "")


def test_a_rerun_that_finished_replaces_the_failed_and_killed_attempts_of_the_same_job():
    rows = [
        row("a", "FAILED"),
        row("b", "KILLED"),
        row("c", "FINISHED"),
        row("d", "FAILED"),
        row("e", "KILLED", 2),
    ]
    assert [r.run_id for r in current_rows(rows)] == ["c", "e"]  # seed 2 never finished: still failed


SLOW_JOB = [
    sys.executable, "-m", "rlpipe.train", "experiment=smoke", "device=cpu", "seed=2",
    "timesteps=100000", f"checkpoint.every={5 * ROLLOUT}", "threads=1",
]  # fmt: skip


@pytest.mark.slow  # a CLI job killed -9 (~11 s): `make test-reliability`, which CI runs
def test_a_job_killed_9_mid_run_is_reaped_then_resumed_in_the_same_run_to_the_same_timesteps(
    smoke_job, tracking_uri, tmp_path
):
    where = [f"tracking.uri={tracking_uri}", f"checkpoint.dir={tmp_path}/checkpoints"]
    proc = subprocess.Popen(
        [*SLOW_JOB, *where], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    manifest = None
    deadline = time.monotonic() + 180
    while manifest is None and time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "checkpoints").glob("*/checkpoint.json"))
        manifest = found[0] if found else None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert manifest is not None, "the job wrote no checkpoint before it ended"
    saved = json.loads(manifest.read_text())
    tracker = Tracker(tracking_uri, "rlpipe")
    assert reap(tracker) == [saved["run_id"]]  # the ghost RUNNING run is KILLED
    job = smoke_job(*SLOW_JOB[5:], "resume=true")
    result = run_train(job, RunContext(root=ROOT))
    assert result.run_id == saved["run_id"]  # the same MLflow run, continued
    runs = tracker.search("tags.`rlpipe.kind` = 'job'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert int(runs[0].data.tags["rlpipe.resumed_from"]) == saved["num_timesteps"] > 0
    assert int(runs[0].data.tags["rlpipe.trained_timesteps"]) == -(-100000 // ROLLOUT) * ROLLOUT
    assert not manifest.parent.exists()  # a finished job leaves no checkpoint behind


def test_a_rerun_on_changed_data_trains_again(smoke_job, tracking_uri, tmp_path):
    df = load_data(smoke_job().data).drop(columns=["regime"])
    path = tmp_path / "bars.csv"
    df.to_csv(path, index_label="timestamp")
    data = ["data=csv", f"data.path={path}", "seed=4"]
    first = run_train(smoke_job(*data), RunContext(sweep_id="week-1", root=ROOT))
    assert run_train(smoke_job(*data), RunContext(sweep_id="week-1", root=ROOT)).run_id == first.run_id
    df.iloc[-1, df.columns.get_loc("close")] *= 1.001  # the same file, one bar revised
    df.to_csv(path, index_label="timestamp")
    assert run_train(smoke_job(*data), RunContext(sweep_id="week-2", root=ROOT)).run_id != first.run_id
