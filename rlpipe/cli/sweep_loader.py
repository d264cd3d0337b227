"""Each job's config composed once per distinct choice of config groups, in the process that runs it.

A launcher composes every job's config from the files (Hydra's `load_sweep_config`): 0.12 s a job,
most of it reading and merging the same YAML files again, in the basic launcher's process between
jobs and in each joblib or Ray worker before its job. The jobs of a sweep differ mostly in values
(`seed=1,6,11`, `weekly.job=0..41`). `SweepLoader` wraps Hydra's config loader: the first job of a
distinct set of group choices (and hydra overrides) is composed by Hydra in full and kept; a later
one is a copy of it with the job's value overrides applied again, exactly as Hydra applies them
after composing (`ConfigLoaderImpl._apply_overrides_to_config`), and the fields Hydra derives from
the overrides set again (`hydra.overrides.task`, `hydra.job.override_dirname`, `hydra.runtime.cwd`).
Only plain `key=value` overrides of a single value are applied this way: an assignment of the same
key again gives the same config whatever it held. A job with any other override (`+key`, `~key`, a
dict or list value) is composed in full, as are its errors. The kept configs, keyed by what Hydra
composed them from, belong to the loader and travel with it: the sweeper's check of a batch before
launch (`grid_sweeper.check_batch`) loads every job through the same loader, so the launching process
composes each distinct set once, and a joblib or Ray worker, which receives the loader with each of
its jobs, composes nothing (that was 0.26 s of a worker's first job on a busy machine).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf

_SCALARS = (str, int, float, bool, type(None))


class SweepLoader:
    """Hydra's config loader, with `load_sweep_config` served from a composed copy where it can be."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.kept: dict[tuple[Any, ...], DictConfig] = {}
        """The configs Hydra composed in full, by what `_split` keys them on (a handful per sweep)."""

    def __getattr__(self, name: str) -> Any:
        if name in ("loader", "kept"):  # unpickling: not set yet
            raise AttributeError(name)
        return getattr(self.loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        hydra_overrides = OmegaConf.to_container(master_config.hydra.overrides.hydra)
        assert isinstance(hydra_overrides, list)
        parsed = OverridesParser.create().parse_overrides([*map(str, hydra_overrides), *sweep_overrides])
        key, values = _split(self.loader, master_config, parsed)
        kept = self.kept.get(key) if key is not None else None
        if kept is None:
            cfg = self.loader.load_sweep_config(master_config, sweep_overrides)
            if key is not None:
                self.kept[key] = copy.deepcopy(cfg)
            return cfg
        return _applied(kept, values, parsed, master_config)


def _split(
    loader: Any, master: DictConfig, parsed: Sequence[Override]
) -> tuple[tuple[Any, ...] | None, list[Override]]:
    """What Hydra composes from besides the values (the config and where its files are, every group
    choice and hydra override as written, the value overrides' keys in order), and the value
    overrides; None for the former when a value override is not a plain assignment of one value."""
    fixed, values = [], []
    for o in parsed:
        if o.is_hydra_override() or chooses_group(loader, o):
            fixed.append(o.input_line)
        elif o.type == OverrideType.CHANGE and o.package is None and isinstance(o.value(), _SCALARS):
            values.append(o)
        else:
            return None, []
    sources = OmegaConf.to_yaml(master.hydra.runtime.config_sources)  # the same files, not just the name
    key = (master.hydra.job.config_name, sources, tuple(fixed), tuple(o.key_or_group for o in values))
    return key, values


def _applied(
    kept: DictConfig, values: list[Override], parsed: Sequence[Override], master: DictConfig
) -> DictConfig:
    """A copy of `kept` with the job's `values` applied, as `ConfigLoaderImpl._load_configuration_impl`
    and `load_sweep_config` leave a config composed from `parsed`."""
    cfg = copy.deepcopy(kept)
    ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
    task = [o for o in parsed if not o.is_hydra_override()]
    cfg.hydra.overrides.task = [o.input_line for o in task]
    dirname = cfg.hydra.job.config.override_dirname
    cfg.hydra.job.override_dirname = get_overrides_dirname(
        overrides=task, kv_sep=dirname.kv_sep, item_sep=dirname.item_sep, exclude_keys=dirname.exclude_keys
    )
    cfg.hydra.runtime.cwd = os.getcwd()
    OmegaConf.copy_cache(from_config=master, to_config=cfg)
    return cfg


def chooses_group(loader: object, override: Override) -> bool:
    """Whether Hydra takes `override` as a choice in the defaults list (not a value it sets after)."""
    repository = getattr(loader, "repository", None)
    if repository is None or isinstance(override.value(), dict):
        return False
    return bool(repository.group_exists(override.key_or_group))
