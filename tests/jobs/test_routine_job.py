"""The routine replayed: each step's champion, chosen on data cut at t_k, paper trades the week after
t_k; the weeks are stitched; a killed routine continues at the step it reached."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.errors import ConfigError
from rlpipe.jobs.routine_config import RoutineJob, RoutineSpec
from rlpipe.jobs.routine_job import run_routine
from rlpipe.jobs.routine_times import Clock, split
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.train_job import run_train
from rlpipe.reports.routine_report import PARTS, Week, routine_report, step_metrics, stitched
from rlpipe.tracking import tags as T
from rlpipe.tracking.queries import SweepTimes
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT

SPEC = RoutineSpec(first="2022-06-30 23:00", every="7D", steps=2, sweep=[], dir="routine")


def _routine(smoke_job, tmp_path: Path, **kw) -> RoutineJob:
    job = smoke_job()
    return RoutineJob(dataclasses.replace(SPEC, **kw), job.data, job.tracking, root=tmp_path)


def _crowning(smoke_job, stop_at: int | None = None, continued: bool = False):
    """A step's 'sweep': one smoke job on the data cut at t_k (`continued`: after the first step, a
    continuation of the champion), crowned in the registry; returns its sweep id."""

    def run(step: int, asof: pd.Timestamp, folder: Path) -> str:
        if step == stop_at:
            raise KeyboardInterrupt  # the routine killed during this step
        parent = ["init_from=models:/rlpipe-policy@champion"] if continued and step else []
        job = smoke_job(f"seed={step + 1}", f"data.end='{asof.isoformat()}'", "slices=walk_forward", *parent)
        version = run_train(job, RunContext(sweep_id=f"step-{step}", root=ROOT)).model_version
        registry = Registry(Tracker.of(job.tracking).client, job.tracking.registered_model)
        registry.apply_sweep(f"step-{step}", version, [], {version: f"step {step}: champion"})
        return f"step-{step}"

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
    for k, w in enumerate(weeks):  # the step's wall time split: its job's records, the paper week
        run = client.get_run(client.get_model_version("rlpipe-policy", w.champion).run_id).data.metrics
        t = w.times
        assert t["training"] == pytest.approx(run["time/learn_s"] - run["time/checkpoint_s"])
        assert t["scoring"] == pytest.approx(run["time/checkpoint_s"] + run["time/overhead_s"])
        assert t["paper"] > 0 and t["jobs_at_once"] == 1.0
        assert sum(t[p] for p in PARTS) == pytest.approx(t["wall"]) and t["other"] > 0
        (logged,) = client.get_metric_history(parent.info.run_id, "routine/step_time/paper_s")[k : k + 1]
        assert logged.step == k and logged.value == pytest.approx(t["paper"])
    assert w.parent is None and w.parent_total is None and w.role_label == "from scratch"


@pytest.mark.slow  # ~60 s: the second step's champion continues the first's (`make test-reliability`)
def test_a_continued_champion_is_compared_with_its_parent_on_the_same_week(smoke_job, tmp_path):
    job = _routine(smoke_job, tmp_path)
    weeks = run_routine(job, _crowning(smoke_job, continued=True))
    client = MlflowClient(job.tracking.uri)
    first, second = weeks
    assert first.parent is None and first.parent_total is None  # v1 was trained from scratch
    assert second.champion == "2" and second.parent == "1" and second.role_label == "continuation"
    child, parent = client.get_run(second.paper_run), client.get_run(second.parent_run)
    assert parent.data.tags[T.MODEL_VERSION] == "1" and T.ROUTINE_COMPARISON in parent.data.tags
    assert second.parent_total == pytest.approx(parent.data.metrics["paper/summary/total"])
    assert second.total == pytest.approx(child.data.metrics["paper/summary/total"])

    def traded(run_id: str) -> pd.DataFrame:
        rows = pd.read_csv(client.download_artifacts(run_id, "paper/decisions.csv", str(tmp_path / run_id)))
        return rows[rows["action"] != "warmup"]

    ours, theirs = traded(second.paper_run), traded(second.parent_run)
    assert list(ours["time"]) == list(theirs["time"])  # the same bars, from t_1's close to t_2
    assert ours["hold_equity"].to_numpy() == pytest.approx(theirs["hold_equity"].to_numpy())
    (routine,) = Tracker.of(job.tracking).search(f"tags.`{T.KIND}` = 'routine'")
    m = routine.data.metrics
    assert m["routine/child_vs_parent_weeks"] == 1.0
    assert m["routine/children_beat_parents"] == float(second.total > second.parent_total)
    (diff,) = client.get_metric_history(routine.info.run_id, "routine/child_minus_parent")
    assert diff.step == 1 and diff.value == pytest.approx(second.total - second.parent_total)
    ledger = json.loads((tmp_path / "routine" / "routine.json").read_text())
    assert ledger["format"] == 2 and ledger["weeks"][1]["parent_total"] == second.parent_total


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
    t = weeks[0].times  # no sweep, no paper session: the step's time is all the routine's own
    assert t["training"] == t["scoring"] == t["paper"] == 0.0 and t["other"] > 0
    assert sum(t[p] for p in PARTS) == pytest.approx(t["wall"])


def test_a_ledger_from_before_the_time_split_resumes_and_a_newer_one_is_refused(smoke_job, tmp_path):
    def flat(step: int, asof: pd.Timestamp, folder: Path) -> None:
        if step == 1 and not job.resume:
            raise KeyboardInterrupt  # killed during its second step

    job = _routine(smoke_job, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_routine(job, flat)
    path = tmp_path / "routine" / "routine.json"
    ledger = json.loads(path.read_text())
    new = ("role", "parent", "parent_total", "parent_run", "times")
    weeks = [{k: v for k, v in w.items() if k not in new} for w in ledger["weeks"]]
    path.write_text(json.dumps({"run_id": ledger["run_id"], "weeks": weeks}))  # format 1: no format key
    path.with_suffix(".bak").write_text(json.dumps({"run_id": ledger["run_id"], "weeks": weeks, "format": 3}))
    job = dataclasses.replace(job, resume=True)
    assert [bool(w.times) for w in run_routine(job, flat)] == [False, True]  # step 0 from the old ledger
    assert json.loads(path.read_text())["format"] == 2
    path.with_suffix(".bak").replace(path)
    with pytest.raises(ConfigError, match="format-3 ledger, written by a newer rlpipe"):
        run_routine(job, flat)


def test_the_step_time_split_divides_side_by_side_jobs_by_the_jobs_open_at_once():
    clock = Clock(paper=5.0, registry=1.0)
    alone = split(100.0, SweepTimes(training=40.0, scoring=20.0, open=60.0, busy=60.0, step=4.0), clock)
    assert (alone["training"], alone["scoring"], alone["registry"], alone["other"]) == (40.0, 20.0, 5.0, 30.0)
    # two jobs of 30 s each, side by side for 30 s of wall time: 60 job-seconds in 30 s
    paired = split(50.0, SweepTimes(training=40.0, scoring=20.0, open=60.0, busy=30.0, step=4.0), clock)
    assert paired["jobs_at_once"] == 2.0 and (paired["training"], paired["scoring"]) == (20.0, 10.0)
    assert paired["job_training"] == 40.0 and paired["other"] == pytest.approx(50.0 - 20 - 10 - 5 - 5)


class _Sink:
    """A run that keeps what the report logs."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.texts: dict[str, str] = {}

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        self.metrics.update(metrics)

    def log_metric_series(self, points: list[tuple[str, float, int]]) -> None:
        pass

    def log_text(self, text: str, path: str) -> None:
        self.texts[path] = text

    def log_files(self, paths: list[Path], artifact_dir: str) -> None:
        pass


def test_the_report_counts_how_long_each_champion_held_the_rollbacks_and_children_against_parents(tmp_path):
    week = dict(asof="a", until="b", hold_total=0.0, equity=[1.0], hold=[1.0], paper_run="", health="healthy")
    degraded = {**week, "health": "degraded", "action": "rolled back to v1"}
    times = {"wall": 10.0, "training": 4.0, "scoring": 2.0, "paper": 1.0, "registry": 0.5, "other": 2.5,
             "jobs_at_once": 1.0}  # fmt: skip
    weeks = [
        Week(0, champion="1", total=0.01, role="explorer-0", **week),
        Week(1, champion="1", total=0.03, role="explorer-0", times=times, **week),
        Week(2, champion=None, total=0.0, times=times, **week),
        Week(3, champion="2", total=-0.05, role="champion-0", parent="1", parent_total=-0.07,
             times=times, **degraded),
        Week(4, champion="3", total=0.02, role="refiner-1", parent="2", parent_total=0.05,
             times=times, **week),
        Week(5, champion="4", total=0.0, role="refiner-0", parent="3", times=times, **week),  # not traded
    ]  # fmt: skip
    sink = _Sink()
    summary = routine_report(sink, weeks, tmp_path)
    text = sink.texts["report/routine.md"]
    assert "Champion longevity (consecutive weeks held): v1: 2, v2: 1, v3: 1, v4: 1" in text
    assert "Rollbacks: step 3: v2 rolled back to v1" in text
    assert "| 1 | a | b | v1 | +3.00% | +2.00 pp |" in text and "none (flat)" in text
    assert "| explorer | - | - |" in text
    assert "| champion continuation | v1 -7.00% | +2.00 pp |" in text
    assert "| refiner | v2 +5.00% | -3.00 pp |" in text and "| refiner | v3 (not traded) | - |" in text
    assert "children beat their parents 1 of 2 (mean child - parent -0.50 pp)" in text
    assert summary["routine/children_beat_parents"] == 1.0 and summary["routine/child_vs_parent_weeks"] == 2.0
    assert summary["routine/time/wall_s"] == 50.0 and summary["routine/time/training_s"] == 20.0
    assert "| 1 | 10.0 | 4.0 | 2.0 | 1.0 | 0.5 | 2.5 | 1.00 |" in text and "| 0 | - |" in text
    assert "| all | 50.0 | 20.0 | 10.0 | 5.0 | 2.5 | 12.5 | |" in text and "older rlpipe" in text
    assert step_metrics(weeks[4])["routine/child_minus_parent"] == pytest.approx(-0.03)
    assert "routine/child_minus_parent" not in step_metrics(weeks[5])
