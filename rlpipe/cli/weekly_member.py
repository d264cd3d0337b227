"""A weekly sweep job's config: the member its `weekly.job` names, written into the composed config
(seed, timesteps, lengths, init_from, lr_multiplier, the explorer's values) before the job is
built, so the run records exactly what it trained."""

from __future__ import annotations

import logging

from omegaconf import MISSING, DictConfig, OmegaConf, open_dict

from rlpipe.cli.compose import group, train_job
from rlpipe.errors import ConfigError
from rlpipe.jobs.job_config import TrainJob
from rlpipe.jobs.weekly_plan import Assignment, WeeklySpec, assign

log = logging.getLogger("rlpipe.train")


def weekly_member(cfg: DictConfig, sweep_id: str | None) -> tuple[DictConfig, Assignment | None]:
    """`cfg` with its weekly member's values (unchanged, None, without `weekly`)."""
    if cfg.get("weekly") is None:
        return cfg, None
    # The member comes from the registry (MLflow, seconds to import): only a weekly job pays for it,
    # and a plain job's config is checked before anything heavy is imported (`cli.commands`).
    from rlpipe.tracking import queries
    from rlpipe.tracking.registry import Registry
    from rlpipe.tracking.tracker import Tracker

    spec: WeeklySpec = group(cfg.weekly)
    tracking = group(cfg.tracking)
    tracker = Tracker.of(tracking)
    registry = Registry(tracker.client, tracking.registered_model)
    week = queries.explorer_sweeps(tracker, sweep_id)
    a = assign(spec, registry, str(cfg.gates.select_metric), sweep_id, week)
    m = a.member
    out = cfg.copy()
    with open_dict(out):
        out.seed, out.timesteps = m.seed, m.timesteps
        out.lengths = sorted({int(f * m.timesteps) for f in spec.checkpoint_fractions} - {0, m.timesteps})
        out.init_from, out.lr_multiplier = a.init_from, m.lr_multiplier
        for key, value in a.choice.items():
            open_keyword = key.startswith("agent.")  # the agent node takes any constructor keyword
            if not open_keyword and OmegaConf.select(out, key, default=MISSING) is MISSING:
                raise ConfigError(f"weekly.search: {key!r} is not a config key (--cfg job lists them)")
            OmegaConf.update(out, key, value, force_add=open_keyword)
    log.info("weekly job %d: %s, seed %d, %d steps", spec.job, a.note, m.seed, m.timesteps)
    return out, a


def job_of(cfg: DictConfig, sweep_id: str | None) -> TrainJob:
    """The training job of a composed config; a weekly sweep job becomes its member's job."""
    cfg, member = weekly_member(cfg, sweep_id)
    return train_job(cfg, member)
