"""The end of a sweep, shared by the multirun callback and `python -m rlpipe.promote`."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from rlpipe.cli.compose import group
from rlpipe.cli.table import SweepView, print_table
from rlpipe.jobs.sweep_job import SweepOutcome, run_sweep_step
from rlpipe.jobs.tear_sheet_job import draw_sweep_later

log = logging.getLogger("rlpipe.sweep")


def finish_sweep(cfg: DictConfig, sweep_id: str) -> SweepOutcome:
    """Run the sweep step for `sweep_id`, print the table of its runs and name the champion."""
    tracking, gates = group(cfg.tracking), group(cfg.gates)
    outcome = run_sweep_step(tracking, gates, sweep_id)
    draw_sweep_later(tracking, sweep_id)  # the comparison plot, by a process of its own
    champ = outcome.decision.champion
    version = champ.model_version if champ else None
    print_table(
        outcome.rows, SweepView(sweep_id, gates.select_metric, version, outcome.compare_url), tracking.uri
    )
    log.info("champion: %s", f"v{champ.model_version} (run {champ.run_id})" if champ else "none promoted")
    return outcome
