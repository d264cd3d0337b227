"""A run's tear sheets and a sweep's comparison plot, drawn off the critical path.

Drawing a run's fourteen tear sheets took ~6 s of a job that trains for ~10 s. A job now records its
backtest as data and tags the run `rlpipe.tear_sheets=pending`; a process of its own
(`draw_later`: detached, niced, one thread) draws the PNGs from the run's records
(`rlpipe.reports.tear_sheets`), logs them under the run's `plots/` and tags it `drawn: <n> files`,
while the launcher goes on to the next job. The same drawing runs on demand, in the foreground, for
any run (`python -m rlpipe.runs plots run_id=<id>`): a run whose drawing failed (`failed: <why>`),
a run recorded with `plots=false`, or a run from before this.

A sweep's comparison plot (`sweep/comparison.png` on its parent run) is drawn the same way once its
sweep step is done (`draw_sweep_later`, tag `rlpipe.sweep_plot`): matplotlib is never imported by
the sweep's own process, which ends as soon as its table is printed. On demand:
`python -m rlpipe.runs plots sweep_id=<id>` draws it with every run's tear sheets.

A job run as a Ray task or a Slurm job cannot leave a process behind: Ray ends a worker's child
processes with it, Slurm every process of a job when the job ends. Such a job's run is tagged
`pending: after the sweep`, and the process that draws its sweep's comparison plot, started by the
launching process, draws its tear sheets too (`draw_after_job`).
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from rlpipe.errors import MissingArtifactError
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.process import ray_node_id
from rlpipe.tracking.tracker import RunLog, Tracker

ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
NICE = 19
"""The drawing process's niceness: on a machine the next job trains on, it takes the spare time."""


def draw_run(tracker: Tracker, run_id: str) -> list[str]:
    """Draw run `run_id`'s tear sheets from its records into its `plots/`; the artifact paths.

    Raises:
        MissingArtifactError: no run `run_id` in the store, or one without `curves/equity.parquet`
            (a run that failed before its test slices; its tag then says so).
    """
    from rlpipe.reports.tear_sheets import draw  # matplotlib: here only, never in a job's own process

    bars_per_year = queries.run_metrics(tracker.client, run_id).get(K.BARS_PER_YEAR, math.nan)
    handle = tracker.handle(run_id)
    try:
        curves = queries.equity_curves(tracker.client, run_id)  # logged after report.json: both are there
        report = queries.load_json(tracker.client, run_id, "report/report.json")
        with TemporaryDirectory(prefix="rlpipe-plots-") as tmp:
            files = draw(curves, report, bars_per_year, Path(tmp))
            handle.log_files(files, "plots")
    except Exception as exc:  # the tag says why, for the UI and for a redraw; the caller sees it too
        handle.set_tags({T.TEAR_SHEETS: f"failed: {type(exc).__name__}: {str(exc)[:300]}"})
        raise
    handle.set_tags({T.TEAR_SHEETS: f"drawn: {len(files)} files"})
    return [f"plots/{f.name}" for f in files]


def draw_sweep(tracker: Tracker, sweep_id: str) -> str:
    """Draw sweep `sweep_id`'s comparison plot (test total against worst drawdown, coloured by sweep
    verdict, the champion ringed) from its runs' records into its parent run; the artifact path.

    Raises:
        MissingArtifactError: the sweep has no parent run, or its sweep step has not judged it yet.
    """
    from rlpipe.jobs.sweep_job import SKIPPED, current_rows
    from rlpipe.reports.plots import sweep_plot  # matplotlib: here only, never in a sweep's own process

    parent = tracker.parent(sweep_id)
    if parent is None or T.CHAMPION_VERSION not in parent.data.tags:
        raise MissingArtifactError(f"sweep {sweep_id!r}: no sweep step recorded in the store yet")
    handle = tracker.handle(parent.info.run_id)
    try:
        rows = current_rows(queries.job_rows(tracker, sweep_id))
        verdicts = {r.run_id: r.sweep_verdict for r in rows if r.sweep_verdict not in ("", SKIPPED)}
        champion = parent.data.tags.get(T.CHAMPION_RUN) or next(
            (r.run_id for r in rows if r.model_version == parent.data.tags[T.CHAMPION_VERSION]), None
        )  # a sweep judged before the step kept its champion's run: the run of its version
        with TemporaryDirectory(prefix="rlpipe-plots-") as tmp:
            handle.log_files([sweep_plot(rows, verdicts, champion, Path(tmp) / "comparison.png")], "sweep")
    except Exception as exc:
        handle.set_tags({T.SWEEP_PLOT: f"failed: {type(exc).__name__}: {str(exc)[:300]}"})
        raise
    handle.set_tags({T.SWEEP_PLOT: "drawn"})
    return "sweep/comparison.png"


def draw_later(tracking: TrackingConfig, run_id: str) -> subprocess.Popen[bytes]:
    """Start the drawing of run `run_id`'s tear sheets in a detached process and return at once.

    The process outlives the job and its sweep (a session of its own: a sweep ending or a Ctrl-C
    does not stop it), runs at niceness `NICE` with one BLAS thread, and reports only through the
    run's `rlpipe.tear_sheets` tag. Linux schedules each session as one group against the others
    (autogroup), so a niced process alone in its session would still take a full share of the CPU
    from the jobs training (measured: two of them halved a joblib sweep's training speed); its
    session's group is niced too."""
    return _detached(["plots", f"run_id={run_id}"], tracking)


def draw_after_job(tracking: TrackingConfig, run: RunLog, in_sweep: bool) -> None:
    """Have the tear sheets of a job's `run` (tagged `pending`) drawn once the job is done: by a
    detached process where one the job starts outlives it (`draw_later`), else (a Ray task, a Slurm
    job) by the drawing its sweep starts after the sweep step, or, for a single run, now."""
    if outlives_job():
        draw_later(tracking, run.run_id)
    elif in_sweep:
        run.set_tags({T.TEAR_SHEETS: T.TEAR_SHEETS_AFTER_SWEEP})
    else:
        draw_later(tracking, run.run_id).wait()


def drawing_beside_next_job(plots: bool, in_sweep: bool) -> int:
    """The drawing processes a job leaves running beside its launcher's next job: one where its tear
    sheets are drawn by a detached process in a sweep (`draw_after_job`), else none. They count among
    the jobs running at once when a job's threads are bound: on the 2-core machine a job training on
    two threads beside a drawing process trained 20-25 % slower (its OpenMP threads wait for the one the
    drawer holds up, niced or not); on one thread, 3 % slower."""
    return int(plots and in_sweep and outlives_job())


def outlives_job() -> bool:
    """Whether a process this job starts outlives it: not in a Ray task (Ray ends a worker's child
    processes with it) nor in a Slurm job (Slurm ends every process of a job when the job ends)."""
    return ray_node_id() is None and "SLURM_JOB_ID" not in os.environ


def draw_sweep_later(tracking: TrackingConfig, sweep_id: str) -> subprocess.Popen[bytes]:
    """Start the drawing of sweep `sweep_id`'s comparison plot, and of the tear sheets its jobs left
    to it (`draw_after_job`), in a detached process (as `draw_later`), its parent run tagged
    `rlpipe.sweep_plot=pending` until the plot is drawn."""
    tracker = Tracker.of(tracking)
    parent = tracker.parent_run(sweep_id)
    if parent is not None:
        tracker.handle(parent).set_tags({T.SWEEP_PLOT: T.TEAR_SHEETS_PENDING})
    return _detached(["plots", f"sweep_id={sweep_id}", "what=comparison"], tracking)


def _detached(args: list[str], tracking: TrackingConfig) -> subprocess.Popen[bytes]:
    """`python -m rlpipe.runs <args>` on the store of `tracking`, detached and niced (see `draw_later`)."""
    cmd = [sys.executable, "-m", "rlpipe.runs", *args,
           f"tracking.uri='{tracking.uri}'", f"tracking.experiment='{tracking.experiment}'"]  # fmt: skip
    env = {**os.environ, **dict.fromkeys(ONE_THREAD, "1")}
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True, env=env)
    with contextlib.suppress(OSError):  # it may have ended already; niceness is a courtesy, never a failure
        os.setpriority(os.PRIO_PROCESS, proc.pid, NICE)
    with contextlib.suppress(OSError):  # no autogroups (not Linux, or turned off): the niceness above holds
        Path(f"/proc/{proc.pid}/autogroup").write_text(f"{NICE}\n")
    return proc
