"""Entry point: `python -m rlpipe.evaluate model=models:/rlpipe-policy@champion slices=walk_forward`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rlpipe.config import register_configs
from rlpipe.reevaluation import reevaluate

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    reevaluate(cfg)


if __name__ == "__main__":
    main()
