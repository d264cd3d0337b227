"""The class Hydra instantiates for `hydra/sweeper=pbt`: plugins must live under `hydra_plugins`."""

from __future__ import annotations

from rlpipe.cli import pbt_sweeper


class PBTSweeper(pbt_sweeper.PBTSweeper):
    """`rlpipe.cli.pbt_sweeper.PBTSweeper`, registered where Hydra looks for plugins."""
