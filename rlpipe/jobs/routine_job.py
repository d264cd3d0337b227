"""The weekly routine replayed over history: what the pipeline would have earned, week after week.

Step k has an as-of date t_k = `routine.first` + k x `routine.every`. The step runs a sweep on the
data cut at t_k (`data.end`: no later bar reaches features, slices, training, selection or gates)
with walk-forward slices ending there, and its sweep step; then whichever version is `@champion`
at that moment is paper traded on the bars after t_k up to t_{k+1} (`rlpipe.jobs.paper_job`:
its bars are checked against the champion's recorded windows, the session starts flat and closes
at t_{k+1}). A week with no champion is flat. Each week's buy-and-hold goes through the same
simulator, fills and fees. The weeks are written to a ledger after each step, so a killed routine
continues (`resume=true`) at the step it reached; the sweeps run through whatever launcher the
caller's `run_sweep` uses. The parent run (`rlpipe.kind=routine`) gets the stitched forward
equity against buy-and-hold and flat, per step, and the report (`rlpipe.reports.routine_report`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.agents.checkpoint_io import write_atomic
from rlpipe.data.slices import Slice, Window
from rlpipe.data.sources import DataSpec
from rlpipe.envs.market import make_market
from rlpipe.envs.sim import SimConfig
from rlpipe.errors import ConfigError, DataError
from rlpipe.evaluation.backtest import backtest
from rlpipe.gates.health import HealthConfig
from rlpipe.jobs.paper_job import PaperConfig, PaperJob, run_paper
from rlpipe.reports.routine_report import Week, routine_report
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import RegistryConfig, TrackingConfig
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
LEDGER = "routine.json"
SweepRunner = Callable[[int, pd.Timestamp, Path], None]
"""Runs step k's sweep (and its sweep step) on the data cut at t_k, into the given folder."""


@dataclass(frozen=True)
class RoutineSpec:
    """The replayed routine (config node `routine`)."""

    first: str = "2022-06-30 23:00"
    """t_0, the as-of date of the first step (a bar timestamp, UTC unless it says otherwise)."""
    every: str = "7D"
    """The time between steps (a pandas offset: 7D, 1D...)."""
    steps: int = 8
    """How many steps; the data must reach t_{steps}."""
    sweep: list[str] = field(default_factory=lambda: ["experiment=seed_sweep", "seed=1,6"])
    """Each step's sweep: overrides of `python -m rlpipe.train -m` (with data.end and the slices set
    by the routine)."""
    dir: str = "routine"
    """Folder of the routine's ledger, sweeps and paper sessions (relative: under the project root)."""

    def dates(self) -> list[pd.Timestamp]:
        """t_0 .. t_steps."""
        try:
            first, every = pd.Timestamp(self.first), pd.Timedelta(self.every)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"routine.first={self.first!r} / routine.every={self.every!r}: {exc}") from exc
        first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
        if self.steps < 1 or every <= pd.Timedelta(0):
            raise ConfigError(f"routine.steps={self.steps} must be >= 1 and routine.every={self.every} > 0")
        return [first + k * every for k in range(self.steps + 1)]


@dataclass(frozen=True)
class RoutineJob:
    routine: RoutineSpec
    data: DataSpec
    tracking: TrackingConfig
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    resume: bool = False
    root: Path = field(default_factory=Path.cwd)


def run_routine(job: RoutineJob, run_sweep: SweepRunner) -> list[Week]:
    """Replay the routine (see the module docstring); returns its weeks."""
    dates = job.routine.dates()
    df = job.data.load()
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
            run_sweep(k, dates[k], folder / f"step-{k}")
            weeks.append(_week(job, df, k, dates[k], dates[k + 1], tracker))
            _save(folder, parent.run_id, weeks)
            parent.log_metrics({"routine/week_total": weeks[-1].total,
                                "routine/week_buy_and_hold": weeks[-1].hold_total}, step=k)  # fmt: skip
        routine_report(parent, weeks, folder)
    return weeks


def _week(
    job: RoutineJob, df: pd.DataFrame, k: int, t0: pd.Timestamp, t1: pd.Timestamp, tracker: Tracker
) -> Week:
    """Step k's forward week: the champion at t0 paper traded from t0's close to t1, or flat."""
    name = job.tracking.registered_model
    champion = Registry(tracker.client, name).alias_version("champion")
    hold, hold_curve = _buy_and_hold(df, t0, t1, job.data.spread_bps)
    if champion is None:
        log.info("routine step %d (%s): no champion: flat", k, t0)
        return Week(k, str(t0), str(t1), None, 0.0, hold, [1.0] * len(hold_curve), hold_curve, "", "")
    paper = PaperJob(f"models:/{name}/{champion}", dataclasses.replace(job.data, end=str(t1)), job.tracking,
                     paper=PaperConfig(dir=str(job.root / job.routine.dir / "paper"), start=str(t0)),
                     registry=job.registry, health=job.health, root=job.root)  # fmt: skip
    result = run_paper(paper)  # decides from t0's close (the champion was chosen on bars <= t0)
    folder = str(job.root / job.routine.dir)
    local = tracker.client.download_artifacts(result.run_id, "paper/decisions.csv", folder)
    decided = pd.read_csv(local).drop_duplicates("bar", keep="last")  # the closing `end` row: the last bar
    traded = decided["equity"].to_numpy(float)[-len(hold_curve) :].tolist()
    tags = Registry(tracker.client, name).version(champion).tags
    return Week(k, str(t0), str(t1), champion, result.total, hold, traded, hold_curve, result.run_id,
                tags.get(T.HEALTH, ""), tags.get(T.HEALTH_ACTION, ""))  # fmt: skip


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
    return [Week(**w) for w in raw["weeks"]], str(raw["run_id"])


def _save(folder: Path, run_id: str, weeks: list[Week]) -> None:
    text = json.dumps({"run_id": run_id, "weeks": [asdict(w) for w in weeks]})
    write_atomic(folder / LEDGER, lambda f: f.write(text.encode()))
