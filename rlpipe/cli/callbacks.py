"""Hydra callback: set the store and the sweep's parent run up before a multirun fans out, judge it after."""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rlpipe.cli.compose import group
from rlpipe.cli.sweep import finish_sweep, sweep_id_for
from rlpipe.jobs.sweep_job import start_sweep

log = logging.getLogger("rlpipe.sweep")


class SweepCallback(Callback):
    """Before the jobs: the experiment and the sweep's parent run. After: the sweep step and a table."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        tracking = group(config.tracking)
        parent = start_sweep(tracking, sweep_id)
        log.info(
            "sweep %s -> %s (experiment %s, parent run %s)",
            sweep_id,
            tracking.uri,
            tracking.experiment,
            parent,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and exits 0; a sweep whose step
        # failed must not look like a success, so the failure is logged and the exit is non-zero.
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        try:
            outcome = finish_sweep(config, sweep_id)
        except Exception:
            log.exception(
                "the sweep-level step failed; rerun it with python -m rlpipe.promote sweep_id=%s", sweep_id
            )
            raise SystemExit(1) from None
        if outcome.failed:
            log.error(
                "%d of %d job(s) failed: %s",
                len(outcome.failed), len(outcome.rows),
                "; ".join(f"{r.run_name}: {r.error}" for r in outcome.failed),
            )  # fmt: skip
            raise SystemExit(1)
