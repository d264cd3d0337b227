"""Shared fixtures: compose the real config with the smoke preset and a temporary store; one real
smoke sweep through the CLI for the tests that read a sweep back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rlpipe.cli.compose import train_job
from rlpipe.cli.schemas import register_configs
from rlpipe.jobs.job_config import TrainJob
from tests.support.project import CONF, ROOT, Sweep, cli

os.environ.setdefault("RLPIPE_ROOT", str(ROOT))
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: workers side by side, one thread each (and their
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # jobs, which take OMP_NUM_THREADS: threads=null)
register_configs()


@pytest.fixture(autouse=True)
def fresh_store_bindings():
    """Every test binds its stores afresh (`rlpipe.tracking.store.bind` keeps one client per URI for
    the process): a later test that meets another store at a URI seen before (a tracking server at
    a port used again) is checked, not handed the earlier test's client."""
    yield
    store = sys.modules.get("rlpipe.tracking.store")  # a test that never reached MLflow imports nothing
    if store is not None:
        store.unbind_all()


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


@pytest.fixture
def compose_cfg(tracking_uri: str, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with the smoke preset, a temporary store and checkpoint folder, and
    extra overrides."""

    def _compose(*overrides: str, smoke: bool = True) -> DictConfig:
        base = ["experiment=smoke"] if smoke else []
        where = [f"tracking.uri={tracking_uri}", f"checkpoint.dir={tmp_path}/checkpoints"]
        with initialize_config_dir(str(CONF), version_base="1.3"):
            return compose("train", overrides=[*base, *where, *overrides])

    return _compose


@pytest.fixture
def smoke_job(compose_cfg: Callable[..., DictConfig]) -> Callable[..., TrainJob]:
    """The typed smoke job (CPU) with extra overrides."""
    return lambda *overrides: train_job(compose_cfg("device=cpu", *overrides))


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """`python -m rlpipe.train -m experiment=smoke seed=1,2 reward=pnl,pnl_fees` into a fresh store,
    run once for the whole test session: under pytest-xdist the first worker that needs it runs it
    (the others wait on a lock in the session's shared temp folder) and every worker reads it back."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder the workers' own temp folders are in
    tmp, done = shared / "smoke_sweep", shared / "smoke_sweep.json"
    uri = f"sqlite:///{tmp}/mlflow.db"
    with FileLock(f"{done}.lock"):
        if not done.exists():
            tmp.mkdir(exist_ok=True)
            proc = cli(
                "rlpipe.train", "-m", f"hydra.sweep.dir={tmp}/multirun", "experiment=smoke", "seed=1,2",
                "reward=pnl,pnl_fees", f"tracking.uri={uri}", "plots=true",
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            done.write_text(json.dumps({"args": proc.args, "stdout": proc.stdout, "stderr": proc.stderr}))
        ran = json.loads(done.read_text())
    proc = subprocess.CompletedProcess(ran["args"], 0, ran["stdout"], ran["stderr"])
    return Sweep(proc, uri, tmp)


@pytest.fixture(scope="session")
def smoke_sweep_ids(smoke_sweep: Sweep) -> tuple[str, str, Path]:
    """The smoke sweep as (tracking uri, sweep id, folder), read back like the notebook reads it."""
    from rlpipe.tracking import notebook_reads

    sweep_id = notebook_reads.latest_sweep_id(smoke_sweep.uri, "rlpipe")
    assert sweep_id is not None
    return smoke_sweep.uri, sweep_id, smoke_sweep.folder


@pytest.fixture(scope="session")
def smoke_runs(smoke_sweep_ids: tuple[str, str, Path]) -> pd.DataFrame:
    """The smoke sweep's runs as the notebook's `runs_frame`."""
    from rlpipe.tracking import notebook_reads

    uri, sweep_id, _ = smoke_sweep_ids
    return notebook_reads.runs_frame(uri, "rlpipe", sweep_id)
