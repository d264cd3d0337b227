"""What each command does with its composed config: train, evaluate, paper, promote.

A user error ends a command with one line and exit status 2 (`cli.failures`); in a multirun a
failed job is recorded and the sweep goes on.

Each command checks its config first, with modules that import no torch, SB3 or MLflow (`compose`,
`jobs.checks`, the config dataclasses), and imports the modules that run the job (seconds to
import, more on a busy machine) only once the config is accepted: a typo in a key or a bad value is
refused in about a second. Hence the imports inside the functions below.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlpipe.cli.collection import exit_without_final_collection, imports_uncollected
from rlpipe.cli.compose import check_keys, check_required, evaluate_job, group, paper_job
from rlpipe.cli.failures import FAILURE_FILE, Failure, end_command
from rlpipe.cli.weekly_member import job_of
from rlpipe.errors import ConfigError, run_id_of
from rlpipe.jobs.checks import check_data_files, check_tracking, check_train_job
from rlpipe.jobs.job_config import PBTRound
from rlpipe.jobs.naming import sweep_id_for
from rlpipe.jobs.spec import RunContext
from rlpipe.project import project_root
from rlpipe.tracking.config import TrackingConfig

log = logging.getLogger("rlpipe.train")


def train(cfg: DictConfig) -> float:
    """One training job; returns the value a Hydra sweeper optimises (NaN for a failed multirun job)."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    sweep_id = sweep_id_for(hc.sweep.dir) if multirun else None
    if multirun:  # a rerun into the same sweep folder: this attempt's outcome replaces the last one's
        (Path(hc.runtime.output_dir) / FAILURE_FILE).unlink(missing_ok=True)
    try:  # nothing is recorded until the job is checked
        job = job_of(cfg, sweep_id)
        with imports_uncollected():  # the agent's keywords checked: SB3 and torch imported
            check_train_job(job)
    except Exception as exc:
        return _failed(exc, None, hc, multirun)
    with imports_uncollected():  # the config is accepted
        from rlpipe.agents.setup import warm_up_torch
        from rlpipe.jobs.pbt_job import run_round  # torch, SB3, MLflow
        from rlpipe.jobs.train_job import run_train

        warm_up_torch()  # what torch's first optimizer step imports, with the rest

    exit_without_final_collection()  # a launcher's worker process too, not only the command's
    ctx = RunContext(
        sweep_id=sweep_id,
        overrides=tuple(hc.overrides.task),
        root=Path(hc.runtime.cwd or project_root()),
        parallel_jobs=parallel_jobs(hc.launcher),
    )
    try:
        return run_round(job, ctx) if isinstance(job.kind, PBTRound) else run_train(job, ctx).sweep_metric
    except Exception as exc:
        return _failed(exc, run_id_of(exc), hc, multirun)


def _failed(exc: Exception, run_id: str | None, hc: Any, multirun: bool) -> float:
    """A single run ends here; a multirun job leaves its failure for the sweep callback and goes on."""
    if not multirun:
        end_command(exc, run_id)
    failure = Failure.of(exc, run_id, job=f"{hc.job.num} ({' '.join(hc.overrides.task)})")
    failure.write(Path(hc.runtime.output_dir))
    if failure.user_error:
        log.error("%s", failure.line())
    else:
        log.exception("job %s failed (overrides: %s)", hc.job.num, " ".join(hc.overrides.task))
    return math.nan


def parallel_jobs(launcher: DictConfig) -> int:
    """Jobs the launcher runs at once on this machine: joblib's n_jobs (-1: every core), else 1."""
    from rlpipe.agents.setup import usable_cores  # beside the SB3 glue (torch): called once a job runs

    n = OmegaConf.select(launcher, "n_jobs", default=None)
    if n is None:
        return 1
    return usable_cores() if int(n) < 0 else max(1, int(n))


def evaluate(cfg: DictConfig) -> None:
    """Re-evaluate `cfg.model` on `cfg.data` / `cfg.slices` as a new run."""
    try:
        job = evaluate_job(cfg)
        check_data_files(job.data)
        check_tracking(job.tracking)
    except Exception as exc:
        end_command(exc)
    with imports_uncollected():
        from rlpipe.jobs.evaluate_job import run_evaluate  # torch, MLflow: the config is accepted

    try:
        run_evaluate(job)
    except Exception as exc:
        end_command(exc, run_id_of(exc))


def paper(cfg: DictConfig) -> None:
    """Paper trade `cfg.model` on `cfg.data`, bar by bar, as a new (or resumed) paper run."""
    try:
        job = paper_job(cfg)
        check_data_files(job.data)
        check_tracking(job.tracking)
    except Exception as exc:
        end_command(exc)
    with imports_uncollected():
        from rlpipe.jobs.paper_job import run_paper  # torch, MLflow: the config is accepted

    try:
        result = run_paper(job)
    except Exception as exc:
        end_command(exc, run_id_of(exc))
    log.info("paper session %s: %d bars, total after fees %+.2f%% (buy-and-hold %+.2f%%)",
             result.run_id, result.bars, 100 * result.total, 100 * result.hold_total)  # fmt: skip


def promote(cfg: DictConfig) -> None:
    """The sweep step for `cfg.sweep_id` by hand, or a rollback of @champion."""
    try:
        _promote(cfg)
    except Exception as exc:
        end_command(exc)


def _newest_sweep(sweep_id: str | None, tracking: TrackingConfig) -> str:
    """The sweep `promote` judges when no sweep_id is given: the store's newest (`sweep_id`), said in
    the log."""
    if sweep_id is None:
        raise ConfigError(
            f"no sweep in experiment '{tracking.experiment}' at {tracking.uri} to judge; pass "
            "sweep_id=<id> (the tag rlpipe.sweep_id of a sweep's runs), or rollback=true"
        )
    log.warning(
        "promote: no sweep_id given: judging the newest sweep, %s (pass sweep_id=<id> for another)", sweep_id
    )
    return sweep_id


def _promote(cfg: DictConfig) -> None:
    check_required(cfg)
    check_keys(cfg)
    tracking = group(cfg.tracking)
    check_tracking(tracking)
    with imports_uncollected():  # MLflow and the sweep step: the config is accepted
        from rlpipe.cli.sweep_end import finish_sweep
        from rlpipe.tracking import queries
        from rlpipe.tracking.registry import Registry
        from rlpipe.tracking.tracker import Tracker

    if cfg.rollback:
        registry = Registry(Tracker.of(tracking).client, tracking.registered_model)
        restored, retired = registry.rollback()
        log.info(
            "rollback: %s v%s is @champion again (v%s archived)", tracking.registered_model, restored, retired
        )
        return
    tracker = Tracker.of(tracking)
    if cfg.sweep_id:
        sweep_id = str(cfg.sweep_id)
    else:
        sweep_id = _newest_sweep(queries.latest_sweep_id(tracker), tracking)
    if not queries.job_rows(tracker, sweep_id):
        raise ConfigError(  # refused before the sweep step writes anything (a parent run, a report)
            f"sweep_id={sweep_id}: no job runs in experiment '{tracking.experiment}' at {tracking.uri}; "
            "the id is the tag rlpipe.sweep_id that a sweep prints in its table (or see `make ui`)"
        )
    outcome = finish_sweep(cfg, sweep_id)
    if not outcome.decision.configs:
        raise ConfigError(
            f"sweep_id={cfg.sweep_id}: no finished job runs in experiment '{tracking.experiment}'"
        )
