"""The grid sweeper: Hydra's basic sweeper, whose check of a batch before it launches composes each
distinct choice of config groups once. Its plugin module puts it in Hydra's default place
(`hydra/sweeper=basic`), so presets that choose another sweeper (`experiment=optuna`, `pbt`) still
override it.

Hydra's `BasicSweeper` composes every job's config from the files before launching any, so a job
that cannot be composed (a wrong type, an unknown key) stops the sweep before anything trains. That
is 0.2 s a job on a quiet machine, one after another in the launching process while the workers
wait: 8 s before the weekly allocation's first job. The jobs of a sweep differ mostly in values
(`seed=1,6,11`, `weekly.job=0..41`), so here each distinct set of group choices (`reward=pnl`,
`experiment=weekly`) is composed once and each job's value overrides are applied to a copy, exactly
as Hydra applies them after composing. A job whose overrides do not apply, or whose groups do not
compose, is composed in full by Hydra, whose error is the one the user sees. The launcher composes
each job through `rlpipe.cli.sweep_loader.SweepLoader`, the same idea in the process that runs it.
The plugin class Hydra instantiates is `hydra_plugins.rlpipe_pbt.grid_sweeper.GridSweeper`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper, BasicSweeperConf
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from rlpipe.cli.sweep_loader import SweepLoader, chooses_group


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
    """Raise Hydra's own composition error for the first job of `batch` that cannot be composed."""
    loader = context.config_loader
    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], DictConfig | None] = {}
    for overrides in batch:
        parsed = parser.parse_overrides(list(overrides))
        chosen = [chooses_group(loader, o) for o in parsed]
        groups = tuple(str(o.input_line) for o, group in zip(parsed, chosen, strict=True) if group)
        if groups not in bases:
            bases[groups] = _composed(loader, master, list(groups))
        base = bases[groups]
        values = [o for o, group in zip(parsed, chosen, strict=True) if not group]
        if base is None or not _applies(values, base):
            loader.load_sweep_config(master, list(overrides))  # raises what a user must see


def _composed(loader: object, master: DictConfig, groups: list[str]) -> DictConfig | None:
    """The config of these group choices before any value override; None if it cannot be composed."""
    try:
        return loader.load_sweep_config(master, groups)  # type: ignore[attr-defined]
    except Exception:  # composed in full again, per job, for Hydra's own error
        return None


def _applies(values: list[Override], base: DictConfig) -> bool:
    """Whether Hydra would apply these value overrides to (a copy of) the composed `base`."""
    try:
        ConfigLoaderImpl._apply_overrides_to_config(values, copy.deepcopy(base))
    except Exception:
        return False
    return True
