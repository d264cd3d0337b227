"""The class Hydra instantiates for `hydra/sweeper=pbt`: plugins must live under `hydra_plugins`."""

from __future__ import annotations

from rlpipe.cli import pbt


class PBTSweeper(pbt.PBTSweeper):
    """`rlpipe.cli.pbt.PBTSweeper`, registered where Hydra looks for plugins."""
