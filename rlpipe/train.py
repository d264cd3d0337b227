"""Entry point: `python -m rlpipe.train [-m] key=value ...` (see README); the work is in `rlpipe.cli`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rlpipe.cli import commands
from rlpipe.cli.failures import run_main
from rlpipe.cli.schemas import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return commands.train(cfg)


if __name__ == "__main__":
    run_main(main)  # a user error exits with status 2, one line, no traceback
