"""`python -m rlpipe.runs reap|compare|plots [tracking=server] [tracking.uri=...]`: the store's upkeep.

`reap`: runs left RUNNING by a process that died -> KILLED, and registry locks whose holder is gone
-> released (recorded on the registered model). `compare [sweep_id=<id>] [ui=<url>]`: the MLflow UI
view of a sweep's runs (the newest sweep by default) saved on the experiment and its URL printed
(`rlpipe.tracking.ui`; `ui` defaults to `make ui`'s address, or the tracking server's).
`plots run_id=<id>|sweep_id=<id> [what=all|comparison|tear_sheets]`: a run's tear sheets drawn now
from its records into its `plots/` (`rlpipe.jobs.tear_sheet_job`; a job starts the same drawing in a
process of its own when it ends), or a sweep's comparison plot (into its parent run's `sweep/`; its
sweep step starts the same drawing, `what=comparison`, which also draws the tear sheets its jobs
left to it: jobs run as Ray tasks or Slurm jobs) and the tear sheets of every job run of the sweep. The
tracking overrides are composed with the package's own conf/train.yaml (found beside the package,
as `python -m rlpipe.train` finds it, never in the working directory), so the command works from
any folder and the store is the one a job with the same overrides would record to. A local store
that does not exist yet is not created: there is nothing to reap or compare. MLflow is imported
once the action and the tracking overrides are accepted (a typo is refused in about a second).
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from rlpipe.cli.collection import exit_without_final_collection, imports_uncollected
from rlpipe.cli.compose import group
from rlpipe.cli.failures import end_command
from rlpipe.cli.schemas import register_configs
from rlpipe.errors import ConfigError, MissingArtifactError
from rlpipe.jobs.checks import check_tracking
from rlpipe.tracking.config import TrackingConfig

USAGE = (
    "usage: python -m rlpipe.runs reap | compare [sweep_id=<id>] [ui=<url>] "
    "| plots run_id=<id>|sweep_id=<id> [what=all|comparison|tear_sheets] "
    "[tracking=local|server] [tracking.uri=...] [tracking.experiment=...]"
)
OPTIONS = {"reap": (), "compare": ("sweep_id=", "ui="), "plots": ("run_id=", "sweep_id=", "what=")}
"""Each action's own arguments (the rest are tracking overrides)."""
WHAT = ("all", "comparison", "tear_sheets")
"""What `plots sweep_id=<id>` draws: both (the default), the comparison plot (with the tear sheets left
to the sweep), or the runs' tear sheets."""
CONF = Path(__file__).resolve().parents[2] / "conf"
"""The config tree beside the package (`rlpipe/train.py` reads the same one as ../conf)."""


def tracking_of(overrides: list[str]) -> TrackingConfig:
    """The tracking group a job with these overrides would use."""
    bad = [o for o in overrides if not o.startswith("tracking")]
    if bad:
        raise ConfigError(f"only tracking overrides are accepted, not {bad}; {USAGE}")
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        tracking: TrackingConfig = group(compose("train", overrides=overrides).tracking)
    check_tracking(tracking)
    return tracking


def compare(tracking: TrackingConfig, sweep_id: str | None, ui_url: str | None) -> str:
    """Save the UI view of sweep `sweep_id` (the newest sweep when None) and return its URL."""
    with imports_uncollected():  # MLflow, and the store's first use
        from rlpipe.tracking import queries, ui
        from rlpipe.tracking.tracker import Tracker

        tracker = Tracker.of(tracking)
    sweep_id = sweep_id or queries.latest_sweep_id(tracker)
    if sweep_id is None or not queries.job_runs(tracker, sweep_id):
        which = f"sweep {sweep_id!r}" if sweep_id else "no sweep"
        raise ConfigError(
            f"{which} has no job run in experiment {tracking.experiment!r} of {tracking.uri}: run a sweep "
            "(`make run`), or name the sweep and its store (sweep_id=..., tracking.uri=..., "
            "tracking.experiment=...)"
        )
    url = ui.sweep_view(tracker, sweep_id, ui_url)
    assert url is not None  # the experiment exists: it holds the sweep's runs
    return url


def plots(tracking: TrackingConfig, run_id: str | None, sweep_id: str | None, what: str = "all") -> list[str]:
    """Draw the tear sheets of run `run_id`, or sweep `sweep_id`'s comparison plot and the tear sheets
    of its job runs (`what`); lines to print."""
    if (run_id is None) == (sweep_id is None):
        raise ConfigError(f"plots takes run_id=<id> or sweep_id=<id>, one of them; {USAGE}")
    if what not in WHAT:
        raise ConfigError(f"what={what}: expected one of {list(WHAT)}; {USAGE}")
    if run_id and what != "all":
        raise ConfigError(f"what={what} goes with sweep_id=<id>: a run has its tear sheets only; {USAGE}")
    with imports_uncollected():  # MLflow and matplotlib, now accepted, and the store's first use
        from rlpipe.jobs.tear_sheet_job import draw_run, draw_sweep
        from rlpipe.tracking import queries
        from rlpipe.tracking import tags as T
        from rlpipe.tracking.tracker import Tracker

        tracker = Tracker.of(tracking)
    runs = [] if run_id else queries.job_runs(tracker, sweep_id or "")
    if sweep_id and not runs:
        raise ConfigError(
            f"sweep {sweep_id!r} has no job run in experiment {tracking.experiment!r} of {tracking.uri}"
        )
    lines = []
    if sweep_id and what != "tear_sheets":
        lines.append(f"sweep {sweep_id}: {draw_sweep(tracker, sweep_id)} on its parent run")
    ids = [run_id] if run_id else [r.info.run_id for r in runs]
    if what == "comparison":  # with the tear sheets its jobs left to the sweep (Ray tasks, Slurm jobs)
        ids = [r.info.run_id for r in runs if r.data.tags.get(T.TEAR_SHEETS) == T.TEAR_SHEETS_AFTER_SWEEP]
    for rid in ids:
        try:
            drawn = draw_run(tracker, rid)
        except MissingArtifactError as exc:
            if run_id:
                raise
            lines.append(f"{rid}: nothing to draw ({exc})")  # a run of the sweep that failed early
            continue
        lines.append(f"{rid}: {len(drawn)} tear sheet(s) in plots/")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    exit_without_final_collection()
    try:
        if not args or args[0] not in OPTIONS:
            raise ConfigError(f"unknown or missing action {args[:1]}; {USAGE}")
        action, own = args[0], tuple(sorted({o for opts in OPTIONS.values() for o in opts}))
        options = dict(a.split("=", 1) for a in args[1:] if a.startswith(own))
        misplaced = [k for k in options if not f"{k}=".startswith(OPTIONS[action])]
        if misplaced:
            raise ConfigError(f"{sorted(misplaced)} do not go with {action}; {USAGE}")
        tracking = tracking_of([a for a in args[1:] if not a.startswith(own)])
        db = Path(tracking.uri.removeprefix("sqlite:///"))
        if tracking.uri.startswith("sqlite:///") and not db.exists():
            sys.stdout.write(f"no store at {db}: nothing to {action} (pass tracking.uri=... to name one)\n")
            return
        if action == "compare":
            sys.stdout.write(compare(tracking, options.get("sweep_id"), options.get("ui")) + "\n")
            return
        if action == "plots":
            sys.stdout.writelines(
                f"{line}\n"
                for line in plots(
                    tracking, options.get("run_id"), options.get("sweep_id"), options.get("what", "all")
                )
            )
            return
        with imports_uncollected():
            from rlpipe.jobs.sweep_job import reap_dead_runs, release_dead_locks

            reaped = reap_dead_runs(tracking)
        released = release_dead_locks(tracking)
    except Exception as exc:
        end_command(exc)
    sys.stdout.write(f"{len(reaped)} run(s) left RUNNING by a dead process marked KILLED in {tracking.uri}\n")
    sys.stdout.writelines(f"  {run_id}\n" for run_id in reaped)
    sys.stdout.write(f"{len(released)} registry lock(s) whose holder is gone released\n")
    sys.stdout.writelines(f"  {name}\n" for name in released)
