"""The class Hydra instantiates for `hydra/sweeper=basic`: plugins must live under `hydra_plugins`.

Hydra imports (and runs) every plugin module once it has run its own core plugins, so this module's
entry replaces the config of Hydra's basic sweeper, the default of every command: its `_target_` is
`GridSweeper`, its keys (`params`, `max_batch_size`) the same. A preset that chooses another sweeper
(`experiment=optuna`, `experiment=pbt`) still overrides it.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from rlpipe.cli import grid_sweeper


class GridSweeper(grid_sweeper.GridSweeper):
    """`rlpipe.cli.grid_sweeper.GridSweeper`, registered where Hydra looks for plugins."""


ConfigStore.instance().store(
    group="hydra/sweeper", name="basic", node=grid_sweeper.GridSweeperConf, provider="rlpipe"
)
