"""Killed runs: SIGTERM and Ctrl-C close a run as KILLED; runs left RUNNING by a dead process are reaped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import tags as T
from rlpipe.tracking.process import process_alive, process_token
from rlpipe.tracking.reaper import reap
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT

OPEN_A_RUN_AND_WAIT = """
import sys, time
from rlpipe.tracking.tracker import Tracker
with Tracker(sys.argv[1], "exp").run("victim", {"rlpipe.kind": "job", "rlpipe.sweep_id": "s"}) as run:
    print(run.run_id, flush=True)
    time.sleep(600)
"""


def running_ids(uri: str) -> list[str]:
    tracker = Tracker(uri, "exp")
    return [r.info.run_id for r in tracker.search("attributes.status = 'RUNNING'")]


def test_a_run_whose_process_was_killed_9_is_reaped_and_a_live_one_is_not(tracking_uri):
    victim = subprocess.Popen(
        [sys.executable, "-c", OPEN_A_RUN_AND_WAIT, tracking_uri], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    run_id = victim.stdout.readline().strip()  # type: ignore[union-attr]
    tracker = Tracker(tracking_uri, "exp")
    with tracker.run("alive", {"rlpipe.kind": "job"}) as alive:
        assert reap(tracker) == []  # both processes live
        victim.send_signal(signal.SIGKILL)  # no cleanup at all: a ghost RUNNING run
        victim.wait()
        assert set(running_ids(tracking_uri)) == {run_id, alive.run_id}
        assert reap(tracker) == [run_id]
        assert running_ids(tracking_uri) == [alive.run_id]
    dead = MlflowClient(tracking_uri).get_run(run_id)
    assert dead.info.status == "KILLED"
    assert dead.data.tags["rlpipe.error"].startswith(
        f"reaped: its process ({dead.data.tags[T.PROCESS]}) is gone"
    )


def test_a_reused_pid_is_not_mistaken_for_the_process_that_opened_the_run():
    me = process_token()
    assert process_alive(me) is True
    host, pid, start = me.split(":")
    assert process_alive(f"{host}:{pid}:{int(start) + 1}") is False  # same pid, another process
    assert process_alive(f"elsewhere-{socket.gethostname()}:{pid}:{start}") is None  # cannot tell


def test_jobs_on_other_hosts_are_reaped_by_their_heartbeat_and_parents_never(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    client, exp = tracker.client, tracker.experiment_id()
    now = time.time()
    made = {}
    for name, kind, beat in (("stale job", T.JOB, now - 3600), ("fresh job", T.JOB, now - 60),
                             ("stale parent", T.SWEEP, now - 3600)):  # fmt: skip
        tags = {T.KIND: kind, T.PROCESS: "another-host:4242:99", T.HEARTBEAT: str(int(beat))}
        made[name] = client.create_run(exp, run_name=name, tags=tags).info.run_id
    assert reap(tracker, stale_after_s=900, now=now) == [made["stale job"]]
    assert client.get_run(made["stale job"]).data.tags["rlpipe.error"] == (
        "reaped: no heartbeat for 60 min (process another-host:4242:99); marked KILLED by rlpipe.runs reap"
    )
    assert sorted(running_ids(tracking_uri)) == sorted([made["fresh job"], made["stale parent"]])


@pytest.mark.slow  # a CLI job and SIGTERM (~11 s): `make test-reliability`, which CI runs
def test_sigterm_closes_a_training_run_as_killed_and_exits_143(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["experiment=smoke", "timesteps=50000000", f"tracking.uri={uri}", f"hydra.run.dir={tmp_path}/out"]
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rlpipe.train", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not running_ids_in(uri):
        time.sleep(0.5)
    time.sleep(2.0)  # inside learn()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "error: killed by SIGTERM; the open run, if any, is marked KILLED"
    (run,) = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("rlpipe").experiment_id])
    assert run.info.status == "KILLED" and run.data.tags["rlpipe.error"] == "Terminated: killed by SIGTERM"


def running_ids_in(uri: str) -> list[str]:
    """Through a Tracker: it waits for the store's creation lock the job may hold."""
    return [r.info.run_id for r in Tracker(uri, "rlpipe").search("attributes.status = 'RUNNING'")]


def test_the_reap_command_refuses_anything_but_tracking_overrides(capsys):
    from rlpipe.cli.runs_main import main

    with pytest.raises(SystemExit) as stop:
        main(["reap", "seed=3"])
    assert stop.value.code == 2
    assert "only tracking overrides are accepted, not ['seed=3']" in capsys.readouterr().err


def test_ctrl_c_inside_a_run_closes_it_as_killed(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    with pytest.raises(KeyboardInterrupt), tracker.run("interrupted", {}) as run:
        raise KeyboardInterrupt
    r = MlflowClient(tracking_uri).get_run(run.run_id)
    assert r.info.status == "KILLED" and r.data.tags["rlpipe.error"] == "killed by Ctrl-C"


def test_the_reap_command_works_outside_the_checkout(tmp_path):
    """No conf/ in the working directory: the package's own config is used; ghosts and dead
    holders' registry locks in the named store are cleared and listed."""
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    tracker = Tracker(uri, "rlpipe")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    token = f"{socket.gethostname()}:{dead}:1"
    ghost = tracker.client.create_run(tracker.experiment_id(), run_name="ghost",
                                      tags={T.KIND: T.JOB, T.PROCESS: token}).info.run_id  # fmt: skip
    tracker.client.create_registered_model("m.lock", tags={T.PROCESS: token}, description="held by x")
    env = {k: v for k, v in os.environ.items() if k != "RLPIPE_ROOT"} | {"PYTHONPATH": str(ROOT)}
    reap_here = [sys.executable, "-m", "rlpipe.runs", "reap"]
    proc = subprocess.run([*reap_here, f"tracking.uri={uri}"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == (
        f"1 run(s) left RUNNING by a dead process marked KILLED in {uri}\n  {ghost}\n"
        "1 registry lock(s) whose holder is gone released\n  m.lock\n"
    )
    assert MlflowClient(uri).get_run(ghost).info.status == "KILLED"


def test_the_reap_command_creates_no_store_where_there_is_none(tmp_path, monkeypatch, capsys):
    from rlpipe.cli.runs_main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RLPIPE_ROOT")  # outside the checkout: the default local store is under the cwd
    main(["reap"])
    assert capsys.readouterr().out == (
        f"no store at {tmp_path}/mlruns/mlflow.db: nothing to reap (pass tracking.uri=... to name one)\n"
    )
    assert not (tmp_path / "mlruns").exists()
