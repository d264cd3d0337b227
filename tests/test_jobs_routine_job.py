"""The routine replayed: each step's champion, chosen on data cut at t_k, paper trades the week after
t_k; the weeks are stitched; a killed routine continues at the step it reached."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.jobs.routine_job import RoutineJob, RoutineSpec, run_routine
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.train_job import run_train
from rlpipe.reports.routine_report import stitched
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.conftest import ROOT

SPEC = RoutineSpec(first="2022-06-30 23:00", every="7D", steps=2, sweep=[], dir="routine")


def _routine(smoke_job, tmp_path: Path, **kw) -> RoutineJob:
    job = smoke_job()
    return RoutineJob(dataclasses.replace(SPEC, **kw), job.data, job.tracking, root=tmp_path)


def _crowning(smoke_job, stop_at: int | None = None):
    """A step's 'sweep': one smoke job on the data cut at t_k, crowned in the registry."""

    def run(step: int, asof: pd.Timestamp, folder: Path) -> None:
        if step == stop_at:
            raise KeyboardInterrupt  # the routine killed during this step
        job = smoke_job(f"seed={step + 1}", f"data.end='{asof.isoformat()}'", "slices=walk_forward")
        version = run_train(job, RunContext(sweep_id=f"step-{step}", root=ROOT)).model_version
        registry = Registry(Tracker.of(job.tracking).client, job.tracking.registered_model)
        registry.apply_sweep(f"step-{step}", version, [], {version: f"step {step}: champion"})

    return run


@pytest.mark.slow  # ~45 s: two steps, each a trained job and a paper week (`make test-reliability`)
def test_each_step_trades_its_champion_on_the_week_after_its_as_of_date(smoke_job, tmp_path):
    job = _routine(smoke_job, tmp_path)
    weeks = run_routine(job, _crowning(smoke_job))
    dates = SPEC.dates()
    client = MlflowClient(job.tracking.uri)
    assert [w.champion for w in weeks] == ["1", "2"]
    for k, w in enumerate(weeks):
        trained = client.search_model_versions(f"name='rlpipe-policy' and version_number={w.champion}")[0]
        params = client.get_run(trained.run_id).data.params
        assert pd.Timestamp(params["data.end"]) == dates[k]  # chosen on bars <= t_k only
        decisions = pd.read_csv(client.download_artifacts(w.paper_run, "paper/decisions.csv", str(tmp_path)))
        traded = pd.to_datetime(decisions.loc[decisions["action"] != "warmup", "time"], utc=True)
        assert traded.min() == dates[k] and traded.max() == dates[k + 1]  # from t_k's close to t_k+1
        assert w.equity[-1] == pytest.approx(1.0 + w.total) and len(w.equity) == len(w.hold)
    total = float(np.prod([1.0 + w.total for w in weeks]) - 1.0)
    assert stitched(weeks, "equity")[-1] - 1.0 == pytest.approx(total)
    (parent,) = Tracker.of(job.tracking).search(f"tags.`{T.KIND}` = 'routine'")
    assert parent.data.metrics["routine/total"] == pytest.approx(total)
    assert "| 1 | 2022-07-07" in Path(client.download_artifacts(parent.info.run_id, "report/routine.md",
                                                                 str(tmp_path))).read_text()  # fmt: skip


@pytest.mark.slow  # ~40 s (`make test-reliability`)
def test_a_killed_routine_continues_at_the_step_it_reached(smoke_job, tmp_path):
    job = _routine(smoke_job, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_routine(job, _crowning(smoke_job, stop_at=1))
    with pytest.raises(Exception, match="resume=true continues it"):
        run_routine(job, _crowning(smoke_job))  # a second routine into the same folder is refused
    weeks = run_routine(dataclasses.replace(job, resume=True), _crowning(smoke_job))
    assert [w.step for w in weeks] == [0, 1] and [w.champion for w in weeks] == ["1", "2"]
    runs = Tracker.of(job.tracking).search(f"tags.`{T.KIND}` = 'routine'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # the same parent run, finished


def test_a_week_without_a_champion_is_flat(smoke_job, tmp_path):
    weeks = run_routine(_routine(smoke_job, tmp_path, steps=1), lambda step, asof, folder: None)
    assert weeks[0].champion is None and weeks[0].total == 0.0 and set(weeks[0].equity) == {1.0}
    assert np.isfinite(weeks[0].hold_total) and len(weeks[0].hold) == len(weeks[0].equity)


def test_the_report_counts_how_long_each_champion_held_and_the_rollbacks(tmp_path):
    from rlpipe.reports.routine_report import Week, _markdown

    week = dict(asof="a", until="b", hold_total=0.0, equity=[1.0], hold=[1.0], paper_run="", health="healthy")
    degraded = {**week, "health": "degraded", "action": "rolled back to v1"}
    weeks = [
        Week(0, champion="1", total=0.01, **week),
        Week(1, champion="1", total=0.03, **week),
        Week(2, champion=None, total=0.0, **week),
        Week(3, champion="2", total=-0.05, **degraded),
    ]
    counts = {"routine/weeks": 4.0, "routine/weeks_with_champion": 3.0, "routine/champion_changes": 2.0}
    text = _markdown(weeks, {"routine/total": 0.0, "routine/buy_and_hold_total": 0.0, **counts})
    assert "Champion longevity (consecutive weeks held): v1: 2, v2: 1" in text
    assert "Rollbacks: step 3: v2 rolled back to v1" in text
    assert "| 1 | a | b | v1 | +3.00% | +2.00 pp |" in text and "none (flat)" in text
