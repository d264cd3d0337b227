"""Each job's config from a composed copy is the config Hydra composes for it: the same values,
node types, flags and hydra fields; what cannot be copied (or fails) is composed by Hydra itself."""

from __future__ import annotations

import subprocess
import sys

import cloudpickle
import pytest
from hydra import initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from rlpipe.cli.schemas import register_configs
from rlpipe.cli.sweep_loader import SweepLoader
from tests.support.project import CONF, ROOT


@pytest.fixture(scope="module")
def loader():
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def jobs(loader, sweep: list[str]) -> tuple[DictConfig, list[list[str]]]:
    master = loader.load_configuration("train", sweep, RunMode.MULTIRUN)
    [batch] = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(sweep), None)
    return master, [list(b) for b in batch]


def described(node) -> object:
    """Everything a config says: values (unresolved), node types and the struct/readonly flags."""
    flags = (OmegaConf.is_struct(node), OmegaConf.is_readonly(node), type(node).__name__)
    if isinstance(node, DictConfig):
        kind = OmegaConf.get_type(node)
        return (flags, kind, {k: described(node._get_node(k)) for k in node})
    if isinstance(node, ListConfig):
        return (flags, [described(node._get_node(i)) for i in range(len(node))])
    return (flags, node._value())


SWEEPS = {
    "seeds with values": ["seed=1,6,11", "timesteps=2048", "tracking.uri=sqlite:////tmp/x/m.db"],
    "weekly": [
        "experiment=weekly",
        "weekly.budget=4200000",
        "weekly.job=range(0,4)",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    ],
    "groups and values": ["reward=pnl,pnl_fees", "agent.learning_rate=0.001,0.0003", "seed=1,2"],
    "added dicts (composed in full)": ["+agent.policy_kwargs={net_arch:[8]},{net_arch:[16]}", "seed=1,2"],
}


@pytest.mark.parametrize("name", SWEEPS)
def test_every_job_is_the_config_hydra_composes(loader, name, monkeypatch):
    master, batch = jobs(loader, SWEEPS[name])
    cached = SweepLoader(loader)
    full_composes = 0
    compose = loader.load_sweep_config

    def counted(m, o):
        nonlocal full_composes
        full_composes += 1
        return compose(m, o)

    monkeypatch.setattr(loader, "load_sweep_config", counted)
    for overrides in batch:
        ours = cached.load_sweep_config(master, overrides)
        ours.hydra.job.num = 7  # what a launcher does to the config it gets: never to the kept one
        ours.seed = 12345 if "seed" in ours else None
        expected = compose(master, overrides)
        expected.hydra.job.num = 7
        expected.seed = 12345 if "seed" in expected else None
        assert described(ours) == described(expected), overrides
        assert OmegaConf.to_yaml(ours) == OmegaConf.to_yaml(expected)  # what .hydra/config.yaml records
    groups = {tuple(o for o in b if o.startswith(("reward=", "+agent"))) for b in batch}
    assert full_composes == (len(batch) if name.startswith("added") else len(groups))


def test_a_value_hydra_refuses_is_refused_with_hydras_error(loader, monkeypatch):
    master, _ = jobs(loader, ["seed=1"])
    cached = SweepLoader(loader)
    cached.load_sweep_config(master, ["seed=1"])  # kept
    with pytest.raises(Exception) as ours:
        cached.load_sweep_config(master, ["seed=x"])
    with pytest.raises(Exception) as hydras:
        loader.load_sweep_config(master, ["seed=x"])
    assert (type(ours.value), str(ours.value)) == (type(hydras.value), str(hydras.value))


WORKER = """
import os, pickle, sys
from hydra._internal.config_loader_impl import ConfigLoaderImpl

def refuse(*args):
    raise AssertionError("the worker composed a config from the files")

ConfigLoaderImpl.load_sweep_config = refuse
loader, master, batch = pickle.loads(open(sys.argv[1], "rb").read())
os.chdir(sys.argv[2])
for overrides in batch:
    cfg = loader.load_sweep_config(master, overrides)
    print(cfg.seed, cfg.hydra.runtime.cwd)
"""


def test_the_loader_travels_to_a_worker_with_what_it_composed_and_the_workers_cwd(loader, tmp_path):
    master, batch = jobs(loader, ["seed=1,2"])
    launching = SweepLoader(loader)
    launching.load_sweep_config(master, batch[0])  # the sweeper's check before launch
    sent = tmp_path / "job.pkl"
    sent.write_bytes(cloudpickle.dumps((launching, master, batch)))  # as loky and Ray send it to a worker
    worker = subprocess.run(
        [sys.executable, "-c", WORKER, str(sent), str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert worker.stdout.splitlines() == [f"1 {tmp_path}", f"2 {tmp_path}"]  # composed nothing
