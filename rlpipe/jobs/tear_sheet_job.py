"""A run's tear sheets drawn off the job's critical path.

Drawing a run's fourteen tear sheets took ~6 s of a job that trains for ~10 s. A job now records its
backtest as data and tags the run `rlpipe.tear_sheets=pending`; a process of its own
(`draw_later`: detached, niced, one thread) draws the PNGs from the run's records
(`rlpipe.reports.tear_sheets`), logs them under the run's `plots/` and tags it `drawn: <n> files`,
while the launcher goes on to the next job. The same drawing runs on demand, in the foreground, for
any run (`python -m rlpipe.runs plots run_id=<id>`): a run whose drawing failed (`failed: <why>`),
a run recorded with `plots=false`, or a run from before this.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.tracker import Tracker

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


def draw_later(tracking: TrackingConfig, run_id: str) -> subprocess.Popen[bytes]:
    """Start the drawing of run `run_id`'s tear sheets in a detached process and return at once.

    The process outlives the job and its sweep (a session of its own: a sweep ending or a Ctrl-C
    does not stop it), runs at niceness `NICE` with one BLAS thread, and reports only through the
    run's `rlpipe.tear_sheets` tag. Linux schedules each session as one group against the others
    (autogroup), so a niced process alone in its session would still take a full share of the CPU
    from the jobs training (measured: two of them halved a joblib sweep's training speed); its
    session's group is niced too."""
    cmd = [sys.executable, "-m", "rlpipe.runs", "plots", f"run_id={run_id}",
           f"tracking.uri='{tracking.uri}'", f"tracking.experiment='{tracking.experiment}'"]  # fmt: skip
    env = {**os.environ, **dict.fromkeys(ONE_THREAD, "1")}
    quiet = subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdin=quiet, stdout=quiet, stderr=quiet, start_new_session=True, env=env)
    with contextlib.suppress(OSError):  # it may have ended already; niceness is a courtesy, never a failure
        os.setpriority(os.PRIO_PROCESS, proc.pid, NICE)
    with contextlib.suppress(OSError):  # no autogroups (not Linux, or turned off): the niceness above holds
        Path(f"/proc/{proc.pid}/autogroup").write_text(f"{NICE}\n")
    return proc
