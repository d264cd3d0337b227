"""`python -m rlpipe.paper`: Hydra composes conf/paper.yaml here (the entry module stays Hydra-free)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from rlpipe.cli import commands
from rlpipe.cli.failures import run_main
from rlpipe.cli.schemas import register_configs

CONF = Path(__file__).resolve().parents[2] / "conf"
"""The package's own config tree (an absolute path: Hydra resolves a relative one as a module)."""


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="paper")
def _paper(cfg: DictConfig) -> None:
    commands.paper(cfg)


def main() -> None:
    """Compose, paper trade; a user error exits with status 2 and one line, no traceback."""
    register_configs()
    run_main(_paper)
