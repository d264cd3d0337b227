"""`experiment=pbt`: a tiny population on the basic launcher replaces its worst member by a mutated copy
of its best, visible in MLflow; on the joblib launcher, killed between rounds, it resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import queries
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT, wait_for

SMALL = ["progress_bar=false", "plots=false", "env.episode_bars=128", "env.episode_bars_std=0.0", "threads=1"]


def pbt_args(tmp, uri: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "rlpipe.train", "-m", "experiment=pbt", "pbt.population=3", "pbt.rounds=2",
        "pbt.interval=4096", *SMALL, f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/multirun", *extra,
    ]  # fmt: skip


def run(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def members(uri: str) -> dict[str, object]:
    tracker = Tracker(uri, "rlpipe")
    sweep = queries.latest_sweep_id(tracker)
    return {r.data.tags["rlpipe.weekly_role"]: r for r in queries.job_runs(tracker, sweep)}


def test_a_tiny_population_replaces_its_worst_member_by_a_mutated_copy_of_its_best(tmp_path, tracking_uri):
    proc = run(pbt_args(tmp_path, tracking_uri))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ledger = json.loads((tmp_path / "multirun" / "pbt" / "pbt.json").read_text())
    first = ledger["scores"][0]
    worst, best = first.index(min(first)), first.index(max(first))
    assert ledger["rounds_done"] == 2 and [(c["member"], c["source"]) for c in ledger["copies"]] == [
        (worst, best)
    ]
    runs = members(tracking_uri)
    assert sorted(runs) == ["pbt-0", "pbt-1", "pbt-2"]  # one run per member, across both rounds
    assert {r.info.status for r in runs.values()} == {"FINISHED"}
    client = MlflowClient(tracking_uri)
    copied = runs[f"pbt-{worst}"]
    assert runs[f"pbt-{best}"].info.run_id in copied.data.tags["rlpipe.pbt.copy.r0"]
    assert [m.value for m in client.get_metric_history(copied.info.run_id, "pbt/copied_from")] == [best]
    lr = {m.step: m.value for m in client.get_metric_history(copied.info.run_id, "pbt/agent.learning_rate")}
    best_lr = client.get_metric_history(runs[f"pbt-{best}"].info.run_id, "pbt/agent.learning_rate")[0].value
    assert lr[1] / best_lr == pytest.approx(0.8) or lr[1] / best_lr == pytest.approx(1.2)
    history = client.get_metric_history(copied.info.run_id, "pbt/validation/sharpe_mean")
    assert [m.step for m in history] == [0, 1] and history[0].value == min(first)
    assert all(r.data.tags.get("rlpipe.model_version") for r in runs.values())  # the last round registers


@pytest.mark.slow  # ~70 s: two CLI sweeps on the joblib launcher
def test_a_population_on_the_joblib_launcher_killed_between_rounds_resumes(tmp_path, tracking_uri):
    args = pbt_args(tmp_path, tracking_uri, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: (tmp_path / "multirun" / "pbt" / "pbt.json").is_file() or proc.poll() is not None)
    proc.send_signal(signal.SIGTERM)  # round 0 done and recorded; round 1 under way or about to start
    proc.communicate(timeout=120)
    refused = run(args)  # without resume=true the population is not silently restarted
    assert refused.returncode != 0 and "resume=true" in refused.stderr
    again = run([*args, "resume=true"])
    assert again.returncode == 0, again.stderr[-3000:]
    ledger = json.loads((tmp_path / "multirun" / "pbt" / "pbt.json").read_text())
    assert ledger["rounds_done"] == 2 and len(ledger["scores"]) == 2
    runs = members(tracking_uri)
    assert sorted(runs) == ["pbt-0", "pbt-1", "pbt-2"] and {r.info.status for r in runs.values()} == {
        "FINISHED"
    }
    assert len(Tracker(tracking_uri, "rlpipe").search("tags.`rlpipe.kind` = 'job'")) == 3  # no duplicate


def test_a_population_refuses_a_sweep_of_values_in_one_line(tmp_path, tracking_uri):
    proc = run([*pbt_args(tmp_path, tracking_uri), "seed=1,2"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: experiment=pbt: seed=1,2 sweeps values; a population sweeps its members (pbt.population)"
    ]
