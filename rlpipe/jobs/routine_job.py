"""The weekly routine replayed over history: what the pipeline would have earned, week after week.

Step k has an as-of date t_k = `routine.first` + k x `routine.every`. The step runs a sweep on the
data cut at t_k (`data.end`: no later bar reaches features, slices, training, selection or gates)
with walk-forward slices ending there, and its sweep step; then whichever version is `@champion`
at that moment is paper traded on the bars after t_k up to t_{k+1} (`rlpipe.jobs.paper_job`:
its bars are checked against the champion's recorded windows, the session starts flat and closes
at t_{k+1}). A week with no champion is flat. Each week's buy-and-hold goes through the same
simulator, fills and fees. Generation over generation: a champion that continues a parent version
(`rlpipe.parent_version`) is compared with that parent, paper traded on the same week the same
way (before the champion's session, while the parent is not @champion, so its health verdict
rolls nothing back). Each step's wall time is split into training, scoring, paper trading,
registry and the rest (`rlpipe.jobs.routine_times`). The weeks are written to a ledger after each
step, so a killed routine continues (`resume=true`) at the step it reached; the sweeps run
through whatever launcher the caller's `run_sweep` uses. The parent run (`rlpipe.kind=routine`)
gets the stitched forward equity against buy-and-hold and flat, per step (with the parent's week
and the time split), and the report (`rlpipe.reports.routine_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.slices import Slice, Window
from rlpipe.data.sources import load_data
from rlpipe.envs.market import make_market
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError, DataError, RlpipeError
from rlpipe.evaluation.backtest import backtest
from rlpipe.files import write_atomic
from rlpipe.jobs.job_config import PaperConfig, PaperJob
from rlpipe.jobs.paper_job import PaperResult, run_paper
from rlpipe.jobs.routine_config import RoutineJob
from rlpipe.jobs.routine_times import NO_JOBS, Clock, split
from rlpipe.reports.routine_report import Week, routine_report, step_metrics
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
LEDGER = "routine.json"
FORMAT = 2
"""The ledger's format: 2 adds each week's champion role, its parent's week and the time split (a
format-1 ledger's weeks load without them)."""
SweepRunner = Callable[[int, pd.Timestamp, Path], str | None]
"""Runs step k's sweep (and its sweep step) on the data cut at t_k, into the given folder; returns
the sweep's id (its runs' `rlpipe.sweep_id`: their recorded times split the step's), or None."""


def run_routine(job: RoutineJob, run_sweep: SweepRunner) -> list[Week]:
    """Replay the routine (see the module docstring); returns its weeks."""
    dates = job.routine.dates()
    df = load_data(job.data)
    if df.index[-1] < dates[-1]:
        raise DataError(f"routine: the data ends at {df.index[-1]}, before the last step's t = {dates[-1]}; "
                        "lower routine.steps or routine.first")  # fmt: skip
    folder = job.root / job.routine.dir
    folder.mkdir(parents=True, exist_ok=True)
    weeks, run_id = _ledger(folder, job.resume)
    tracker = Tracker.of(job.tracking)
    tags = {T.KIND: T.ROUTINE, T.SWEEP_ID: f"routine-{folder.name}"}
    with tracker.run(f"routine-{folder.name}", tags, resume_id=run_id) as parent:
        for k in range(len(weeks), job.routine.steps):
            t0, since_ms, clock = time.perf_counter(), int(time.time() * 1000), Clock()
            sweep_id = run_sweep(k, dates[k], folder / f"step-{k}")
            week = _week(job, df, k, dates[k], dates[k + 1], tracker, clock)
            jobs = queries.sweep_times(tracker, sweep_id, since_ms) if sweep_id else NO_JOBS
            week.times = split(time.perf_counter() - t0, jobs, clock)
            weeks.append(week)
            _save(folder, parent.run_id, weeks)
            parent.log_metrics(step_metrics(week), step=k)
        routine_report(parent, weeks, folder)
    return weeks


def _week(
    job: RoutineJob,
    df: pd.DataFrame,
    k: int,
    t0: pd.Timestamp,
    t1: pd.Timestamp,
    tracker: Tracker,
    clock: Clock,
) -> Week:
    """Step k's forward week: the champion at t0 paper traded from t0's close to t1, or flat; a
    continued champion's parent traded on the same week first."""
    registry = Registry(tracker.client, job.tracking.registered_model)
    with clock.timing("registry"):
        champion = registry.alias_version("champion")
        role, parent = _lineage(tracker, registry, champion) if champion else ("", None)
    hold, hold_curve = _buy_and_hold(df, t0, t1, job.data.spread_bps)
    if champion is None:
        log.info("routine step %d (%s): no champion: flat", k, t0)
        return Week(k, str(t0), str(t1), None, 0.0, hold, [1.0] * len(hold_curve), hold_curve, "", "")
    with clock.timing("paper"):
        compared = _parent_week(job, champion, parent, k, t0, t1, tracker) if parent else None
        result = _paper(job, champion, t0, t1)  # decides from t0's close (chosen on bars <= t0)
        local = tracker.client.download_artifacts(result.run_id, "paper/decisions.csv", str(_folder(job)))
    decided = pd.read_csv(local).drop_duplicates("bar", keep="last")  # the closing `end` row: the last bar
    traded = decided["equity"].to_numpy(float)[-len(hold_curve) :].tolist()
    with clock.timing("registry"):
        tags = registry.version(champion).tags
    return Week(k, str(t0), str(t1), champion, result.total, hold, traded, hold_curve, result.run_id,
                tags.get(T.HEALTH, ""), tags.get(T.HEALTH_ACTION, ""), role, parent,
                compared.total if compared else None, compared.run_id if compared else "")  # fmt: skip


def _lineage(tracker: Tracker, registry: Registry, version: str) -> tuple[str, str | None]:
    """A version's weekly role (from its run) and its parent version (None: trained from scratch)."""
    found = registry.version(version)
    role = tracker.client.get_run(found.run_id).data.tags.get(T.ROLE, "") if found.run_id else ""
    return role, found.tags.get(T.PARENT_VERSION) or None


def _paper(job: RoutineJob, version: str, t0: pd.Timestamp, t1: pd.Timestamp) -> PaperResult:
    """A registered version paper traded from t0's close to t1 (bars before t0 warm its features up)."""
    paper = PaperJob(f"models:/{job.tracking.registered_model}/{version}",
                     dataclasses.replace(job.data, end=str(t1)), job.tracking,
                     paper=PaperConfig(dir=str(_folder(job) / "paper"), start=str(t0)),
                     registry=job.registry, health=job.health, root=job.root)  # fmt: skip
    return run_paper(paper)


def _parent_week(
    job: RoutineJob, child: str, parent: str, k: int, t0: pd.Timestamp, t1: pd.Timestamp, tracker: Tracker
) -> PaperResult | None:
    """The champion's parent on the champion's week; None (and a warning) when it cannot trade it."""
    try:
        result = _paper(job, parent, t0, t1)
    except RlpipeError as exc:  # e.g. the parent version was deleted: the week still counts for the child
        log.warning("routine step %d: v%s's parent v%s not traded on its week: %s", k, child, parent, exc)
        return None
    why = f"routine step {k}: the parent of @champion v{child} on the same week"
    tracker.handle(result.run_id).set_tags({T.ROUTINE_COMPARISON: why})
    return result


def _folder(job: RoutineJob) -> Path:
    return job.root / job.routine.dir


def _buy_and_hold(
    df: pd.DataFrame, t0: pd.Timestamp, t1: pd.Timestamp, spread_bps: float
) -> tuple[float, list[float]]:
    """Buy-and-hold on the bars from t0 to t1 through the simulator's fills and fees."""
    week = df[(df.index >= t0) & (df.index <= t1)]
    if len(week) < 2:
        return math.nan, []
    market = make_market(week, np.zeros((len(week), 1), np.float32), spread_bps)
    window = Window(Slice("week", "test", "unlabelled", week.index[0], week.index[-1]), 0, len(week))
    (hold,) = backtest(market, SimConfig(), [window], None, 0, baselines=("buy_and_hold",))
    return float(hold.metrics["total"]), [float(v) for v in hold.equity]


def _ledger(folder: Path, resume: bool) -> tuple[list[Week], str | None]:
    path = folder / LEDGER
    if not path.exists():
        return [], None
    if not resume:
        raise ConfigError(f"{path} exists: a routine was replayed into {folder}; resume=true continues it, "
                          "or choose another routine.dir")  # fmt: skip
    raw = json.loads(path.read_text())
    version = raw.get("format", 1)
    if version > FORMAT:
        raise ConfigError(
            f"{path} is a format-{version} ledger, written by a newer rlpipe (this one reads up to "
            f"{FORMAT}): resume it with that version, or choose another routine.dir"
        )
    if version < FORMAT:
        log.warning("%s: format %d: its %d week(s) have no champion role, parent week or time split",
                    path, version, len(raw["weeks"]))  # fmt: skip
    return [Week(**w) for w in raw["weeks"]], str(raw["run_id"])


def _save(folder: Path, run_id: str, weeks: list[Week]) -> None:
    text = json.dumps({"format": FORMAT, "run_id": run_id, "weeks": [asdict(w) for w in weeks]})
    write_atomic(folder / LEDGER, lambda f: f.write(text.encode()))
