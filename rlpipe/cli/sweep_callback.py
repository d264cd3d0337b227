"""Hydra callback: set the store and the sweep's parent run up before a multirun fans out, judge it after."""

from __future__ import annotations

import atexit
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rlpipe.cli import joblib_pool
from rlpipe.cli.collection import imports_uncollected
from rlpipe.cli.compose import group
from rlpipe.cli.failures import BUG, Failure, end_command, exit_status, is_user_error, read_failures
from rlpipe.jobs import weekly_plan
from rlpipe.jobs.checks import check_tracking
from rlpipe.jobs.job_owner import LAUNCHER_ENV
from rlpipe.jobs.naming import sweep_id_for
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.process import process_token

if TYPE_CHECKING:
    from rlpipe.jobs.sweep_job import SweepOutcome

log = logging.getLogger("rlpipe.sweep")


class SweepCallback(Callback):
    """Before the jobs: the experiment and the sweep's parent run. After: the sweep step and a table.

    A sweep whose process ends before its sweep step (Ctrl-C, SIGTERM, a crash of the launcher)
    closes its parent run as KILLED on the way out, so the UI shows no RUNNING ghost; one that
    recorded no job (its batch refused by Hydra before launch, say) deletes it, so nothing is left.

    Hydra builds this callback for every command, a single run too, before the job's config is
    checked: the sweep's modules (MLflow) are imported in the multirun hooks, not with this module.
    """

    def __init__(self) -> None:
        self._open: tuple[TrackingConfig, str] | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        try:  # a bad plan or store stops the sweep before any job (SystemExit passes Hydra's callback guard)
            if config.get("weekly") is not None:
                weekly_plan.check(group(config.weekly))  # once, not once per job
            tracking = group(config.tracking)
            check_tracking(tracking)
            # Workers started from here (joblib/loky, submitit) stop when this process dies.
            os.environ[LAUNCHER_ENV] = process_token()
            joblib_pool.start(config.hydra.launcher, tracking)  # warmed beside the sweep's start below
            with imports_uncollected():  # the plan is accepted: MLflow, and the store's first use
                from rlpipe.jobs.sweep_job import reap_dead_runs, start_sweep

                reaped = reap_dead_runs(tracking)  # ghosts of killed jobs: KILLED before anything new starts
            parent = start_sweep(tracking, sweep_id, swept_keys(config))
        except Exception as exc:
            joblib_pool.stop()
            end_command(exc)
        self._open = (tracking, sweep_id)
        atexit.register(self._close_interrupted)
        if reaped:
            log.warning("%d run(s) left RUNNING by a process that died were marked KILLED", len(reaped))
        log.info(
            "sweep %s -> %s (experiment %s, parent run %s)",
            sweep_id,
            tracking.uri,
            tracking.experiment,
            parent,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and exits 0; a sweep whose step or jobs
        # failed must not look like a success, so the exit status says it: 2 for user errors only.
        from rlpipe.cli.sweep_end import finish_sweep

        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        joblib_pool.release()
        atexit.unregister(self._close_interrupted)
        self._open = None
        try:
            outcome = finish_sweep(config, sweep_id)
        except Exception as exc:
            if is_user_error(exc):
                end_command(exc)
            log.exception(
                "the sweep-level step failed; rerun it with python -m rlpipe.promote sweep_id=%s", sweep_id
            )
            raise SystemExit(BUG) from None
        _exit_on_failures(outcome, read_failures(Path(config.hydra.sweep.dir)))

    def _close_interrupted(self) -> None:
        if self._open is None:
            return
        from rlpipe.jobs.sweep_job import close_interrupted_sweep

        tracking, sweep_id = self._open
        try:
            close_interrupted_sweep(tracking, sweep_id)
        except Exception:  # the process is ending: say it, never mask the exit status
            log.warning("could not close the parent run of interrupted sweep %s", sweep_id, exc_info=True)


def swept_keys(config: DictConfig) -> list[str]:
    """The config keys a multirun varies: its command line's sweep overrides (`seed=1,2,3`,
    `reward=pnl,shaped`) and its sweeper's `params` (a preset's `hydra.sweeper.params`, Optuna's
    search space), in that order, each once. Only the launching process knows the former: a job's
    own config holds its one value."""
    given = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [o.key_or_group for o in given if o.is_sweep_override()]
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    keys += [str(k) for k in params] if isinstance(params, DictConfig) else []
    return list(dict.fromkeys(keys))


def _exit_on_failures(outcome: SweepOutcome, failures: list[Failure]) -> None:
    """One line per failed job on stderr, then exit 2 if each failed for a user error, else 1."""
    explained = {f.run_id for f in failures if f.run_id}
    unexplained = [r for r in outcome.failed if r.run_id not in explained]  # e.g. a killed job
    failed = len(failures) + len(unexplained)
    if not failed:
        return
    jobs = len(outcome.rows) + sum(f.run_id is None for f in failures)  # some failed before a run
    log.error("%d of %d job(s) failed", failed, jobs)
    for f in failures:
        sys.stderr.write(f.line() + "\n")
    for r in unexplained:
        why = r.error or "no error recorded"
        sys.stderr.write(f"error: run {r.run_name} ({r.run_id}) ended {r.status}: {why}\n")
    raise SystemExit(exit_status(failures, len(unexplained)))
