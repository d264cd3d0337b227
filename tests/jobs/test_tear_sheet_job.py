"""The detached drawing process takes only the CPU the jobs leave: niced, and so is its session's
scheduling group (Linux autogroup), where a niced process alone in its session would still take a
full share from the jobs training. A job whose processes end with it (a Ray task, a Slurm job)
leaves its tear sheets to the drawing its sweep starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.jobs.tear_sheet_job import NICE, draw_later, drawing_beside_next_job, outlives_job
from rlpipe.tracking.config import TrackingConfig
from tests.support.project import cli, drawn_plots, drawn_sweep_plot


def test_the_drawing_process_is_niced_in_its_own_session_and_so_is_its_scheduling_group(tmp_path):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="rlpipe")
    proc = draw_later(tracking, "no-such-run")  # refused once it runs: the process is all we look at
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)  # a Ctrl-C of the sweep does not reach it
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == NICE
        group = Path(f"/proc/{proc.pid}/autogroup")
        if not Path("/proc/self/autogroup").exists():
            pytest.skip("this kernel schedules no autogroups")
        assert group.read_text().split()[-1] == str(NICE)  # "/autogroup-123 nice 10"
    finally:
        proc.kill()
        proc.wait()


def test_a_process_started_in_a_slurm_job_does_not_outlive_it(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert outlives_job()
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert not outlives_job()


def test_a_sweep_job_counts_the_drawing_it_leaves_beside_the_next_job(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert drawing_beside_next_job(plots=True, in_sweep=True) == 1
    assert drawing_beside_next_job(plots=False, in_sweep=True) == 0
    assert drawing_beside_next_job(plots=True, in_sweep=False) == 0  # a single run draws once it is done
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert drawing_beside_next_job(plots=True, in_sweep=True) == 0  # drawn after the sweep, by its drawing


def test_the_sweep_draws_the_tear_sheets_its_jobs_left_to_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")  # as in a Slurm job: nothing a job starts may outlive it
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli("rlpipe.train", "-m", f"hydra.sweep.dir={tmp_path}/multirun", "experiment=smoke", "seed=1",
               "plots=true", f"tracking.uri={uri}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(uri)
    [job] = client.search_runs(["1"], "tags.`rlpipe.kind` = 'job'")
    [parent] = client.search_runs(["1"], "tags.`rlpipe.kind` = 'sweep'")
    assert "sweep/comparison.png" in drawn_sweep_plot(uri, parent.info.run_id)
    assert len(drawn_plots(uri, job.info.run_id)) == 14  # by the sweep's drawing: the job started none
