"""Entry point: `python -m rlpipe.promote sweep_id=<id>` or `python -m rlpipe.promote rollback=true`."""

from __future__ import annotations

import logging

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from rlpipe.callbacks import print_table
from rlpipe.config import register_configs
from rlpipe.errors import ConfigError
from rlpipe.sweep import sweep_step
from rlpipe.tracking import registry
from rlpipe.tracking.queries import sweep_runs
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger("rlpipe.promote")
register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="promote")
def main(cfg: DictConfig) -> None:
    track = instantiate(cfg.tracking, _convert_="all")
    ensure_experiment(track.uri, track.experiment)
    if cfg.rollback:
        restored, retired = registry.rollback(track.registered_model)
        log.info(
            "rollback: %s v%s is @champion again (v%s archived)", track.registered_model, restored, retired
        )
        return
    if not cfg.sweep_id:
        raise ConfigError(
            "sweep_id=<id> is required (the tag rlpipe.sweep_id of the sweep's runs), or rollback=true"
        )
    decision = sweep_step(
        track.uri,
        track.experiment,
        track.registered_model,
        str(cfg.sweep_id),
        instantiate(cfg.gates, _convert_="all"),
    )
    if not decision.configs:
        raise ConfigError(f"sweep_id={cfg.sweep_id}: no finished job runs in experiment '{track.experiment}'")
    print_table(str(cfg.sweep_id), sweep_runs(track.uri, track.experiment, str(cfg.sweep_id)), track.uri)
    champ = decision.champion
    log.info("champion: %s", f"v{champ.model_version} (run {champ.run_id})" if champ else "none promoted")


if __name__ == "__main__":
    main()
