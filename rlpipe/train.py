"""Entry point: `python -m rlpipe.train [-m] key=value ...` (see README)."""

from __future__ import annotations

import logging
import math

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rlpipe.callbacks import sweep_id_for
from rlpipe.config import register_configs
from rlpipe.pipeline import run, sweep_metric

log = logging.getLogger("rlpipe.train")
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        summary = run(cfg, sweep_id_for(hc.sweep.dir) if multirun else None, list(hc.overrides.task))
    except Exception:
        if not multirun:
            raise
        # The run is already marked FAILED with its traceback; the sweep goes on, and the
        # sweep callback turns any failure into a non-zero exit status at the end.
        log.exception("job %s failed (overrides: %s)", hc.job.num, " ".join(hc.overrides.task))
        return math.nan
    return sweep_metric(summary)


if __name__ == "__main__":
    main()
