"""`python -m rlpipe.paper`: Hydra composes conf/paper.yaml here (the entry module stays Hydra-free)."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rlpipe.cli import commands
from rlpipe.cli.failures import run_main
from rlpipe.cli.schemas import register_configs


@hydra.main(version_base="1.3", config_path="../../conf", config_name="paper")
def _paper(cfg: DictConfig) -> None:
    commands.paper(cfg)


def main() -> None:
    """Compose, paper trade; a user error exits with status 2 and one line, no traceback."""
    register_configs()
    run_main(_paper)
