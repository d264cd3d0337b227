"""The grid sweeper: Hydra's basic sweeper, whose check of a batch before it launches composes each
distinct choice of config groups once. Its plugin module puts it in Hydra's default place
(`hydra/sweeper=basic`), so presets that choose another sweeper (`experiment=optuna`, `pbt`) still
override it.

Hydra's `BasicSweeper` composes every job's config from the files before launching any, so a job
that cannot be composed (a wrong type, an unknown key) stops the sweep before anything trains. That
is 0.2 s a job on a quiet machine, one after another in the launching process while the workers
wait: 8 s before the weekly allocation's first job. The jobs of a sweep differ mostly in values
(`seed=1,6,11`, `weekly.job=0..41`), so the check loads each job through the sweep's
`rlpipe.cli.sweep_loader.SweepLoader`: each distinct set of group choices (`reward=pnl`,
`experiment=weekly`) is composed once and each job's value overrides are applied to a copy, exactly
as Hydra applies them after composing; a job whose overrides are not plain values is composed in
full by Hydra, and a refused job gets Hydra's own error. The launcher loads each job through the
same loader, which has kept what the check composed, in this process or in the worker it is sent
to. The plugin class Hydra instantiates is `hydra_plugins.rlpipe_pbt.grid_sweeper.GridSweeper`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from rlpipe.cli.sweep_loader import SweepLoader


@dataclass
class GridSweeperConf(BasicSweeperConf):
    """`hydra/sweeper=basic`'s config (`params`, `max_batch_size`), pointing at the plugin class."""

    _target_: str = "hydra_plugins.rlpipe_pbt.grid_sweeper.GridSweeper"


class GridSweeper(BasicSweeper):
    """The cartesian product of the sweep's values, like Hydra's basic sweeper (same `params` and
    `max_batch_size`), checked before launch in one composition per distinct choice of groups."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """As the basic sweeper, its launcher composing each job through `SweepLoader`."""
        loader = SweepLoader(hydra_context.config_loader)
        context = HydraContext(config_loader=loader, callbacks=hydra_context.callbacks)  # type: ignore[arg-type]
        super().setup(hydra_context=context, task_function=task_function, config=config)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.hydra_context is not None and self.config is not None
        check_batch(self.hydra_context, self.config, batch)


def check_batch(context: HydraContext, master: DictConfig, batch: Sequence[Sequence[str]]) -> None:
    """Raise Hydra's own composition error for the first job of `batch` that cannot be composed. Each
    job is loaded through the sweep's `SweepLoader` (a distinct choice of groups composed once), which
    keeps what it composed for the jobs themselves."""
    given = context.config_loader
    loader = given if isinstance(given, SweepLoader) else SweepLoader(given)
    for overrides in batch:
        loader.load_sweep_config(master, list(overrides))
