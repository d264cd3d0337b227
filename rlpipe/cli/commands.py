"""What each command does with its composed config: train, evaluate, promote."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlpipe.cli.compose import evaluate_job, group, train_job
from rlpipe.cli.sweep import finish_sweep, sweep_id_for
from rlpipe.errors import ConfigError
from rlpipe.jobs.evaluate_job import run_evaluate
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.train_job import run_train
from rlpipe.project import project_root
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger("rlpipe.train")


def train(cfg: DictConfig) -> float:
    """One training job; returns the value a Hydra sweeper optimises (NaN for a failed multirun job)."""
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    ctx = RunContext(
        sweep_id=sweep_id_for(hc.sweep.dir) if multirun else None,
        overrides=tuple(hc.overrides.task),
        root=Path(hc.runtime.cwd or project_root()),
    )
    try:
        return run_train(train_job(cfg), ctx).sweep_metric
    except Exception:
        if not multirun:
            raise
        # The run is already marked FAILED with its traceback; the sweep goes on, and the
        # sweep callback turns any failure into a non-zero exit status at the end.
        log.exception("job %s failed (overrides: %s)", hc.job.num, " ".join(hc.overrides.task))
        return math.nan


def evaluate(cfg: DictConfig) -> None:
    """Re-evaluate `cfg.model` on `cfg.data` / `cfg.slices` as a new run."""
    run_evaluate(evaluate_job(cfg))


def promote(cfg: DictConfig) -> None:
    """The sweep step for `cfg.sweep_id` by hand, or a rollback of @champion."""
    tracking = group(cfg.tracking)
    if cfg.rollback:
        registry = Registry(Tracker(tracking.uri, tracking.experiment).client, tracking.registered_model)
        restored, retired = registry.rollback()
        log.info(
            "rollback: %s v%s is @champion again (v%s archived)", tracking.registered_model, restored, retired
        )
        return
    if not cfg.sweep_id:
        raise ConfigError(
            "sweep_id=<id> is required (the tag rlpipe.sweep_id of the sweep's runs), or rollback=true"
        )
    outcome = finish_sweep(cfg, str(cfg.sweep_id))
    if not outcome.decision.configs:
        raise ConfigError(
            f"sweep_id={cfg.sweep_id}: no finished job runs in experiment '{tracking.experiment}'"
        )
