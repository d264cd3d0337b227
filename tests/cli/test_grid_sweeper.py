"""The grid sweeper's check before launch accepts and refuses the batches Hydra's basic sweeper does,
with Hydra's own error, while composing each distinct choice of config groups once."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import HydraContext, RunMode

from rlpipe.cli.grid_sweeper import check_batch
from rlpipe.cli.schemas import register_configs
from tests.support.project import CONF


@pytest.fixture(scope="module")
def loader():
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def batch_of(loader, sweep: list[str]) -> tuple[HydraContext, object, list[list[str]]]:
    """Hydra's context, the master config and the jobs' overrides of `python -m rlpipe.train -m <sweep>`."""
    master = loader.load_configuration("train", sweep, RunMode.MULTIRUN)
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(sweep)
    [batch] = BasicSweeper.split_arguments(parsed, None)
    return HydraContext(config_loader=loader, callbacks=None), master, batch


def hydra_error(context: HydraContext, master, batch) -> str | None:
    """What Hydra's basic sweeper says of `batch` before launch (None: accepted)."""
    try:
        for overrides in batch:
            context.config_loader.load_sweep_config(master, list(overrides))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def grid_error(context: HydraContext, master, batch) -> str | None:
    try:
        check_batch(context, master, batch)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


SWEEPS = {  # the command line of `-m`, and whether Hydra composes every job of it
    "seeds": (["seed=1,6,11"], True),
    "groups and values": (["reward=pnl,pnl_fees", "agent.learning_rate=0.001,0.0003"], True),
    "weekly": (["experiment=weekly", "weekly.job=range(0,3)"], True),
    "added dicts": (["+agent.policy_kwargs={net_arch:[8]},{net_arch:[16]}", "seed=1,2"], True),
    "a wrong type in one job": (["seed=1,x,3"], False),
    "an unknown key": (["env.stakee=1,2"], False),
    "an added key that exists": (["+seed=1,2"], False),
    "a group option that does not exist": (["reward=pnl,no_such_reward", "seed=1,2"], False),
}


@pytest.mark.parametrize("name", SWEEPS)
def test_a_batch_is_refused_exactly_when_hydra_refuses_it_with_hydras_error(loader, name):
    sweep, accepted = SWEEPS[name]
    context, master, batch = batch_of(loader, sweep)
    expected = hydra_error(context, master, batch)
    assert (expected is None) == accepted, expected
    assert grid_error(context, master, batch) == expected


def test_each_distinct_choice_of_groups_is_composed_once(loader, monkeypatch):
    context, master, batch = batch_of(loader, ["reward=pnl,pnl_fees", "seed=1,2,3", "timesteps=100,200"])
    composed: list[list[str]] = []
    load = type(loader).load_sweep_config
    monkeypatch.setattr(
        type(loader), "load_sweep_config", lambda self, m, o: composed.append(list(o)) or load(self, m, o)
    )
    check_batch(context, master, batch)
    assert len(batch) == 12
    assert [c[0] for c in composed] == ["reward=pnl", "reward=pnl_fees"]  # the first job of each, in full
