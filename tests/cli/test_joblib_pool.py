"""joblib's workers warmed while a sweep starts: the jobs' own `Parallel` call reuses them, with the
job's modules already imported by the fork server they are forked from; a sweep that stops before
its jobs kills them, and one that ends lets them and the fork server go."""

from __future__ import annotations

import gc
import os
import sys
from multiprocessing import forkserver
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from joblib import Parallel, delayed
from joblib.externals.loky.backend import context
from omegaconf import OmegaConf

from rlpipe.cli import joblib_pool
from rlpipe.tracking.config import TrackingConfig
from tests.support.project import CONF


@pytest.fixture
def launcher():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], return_hydra_config=True
        )
    yield cfg.hydra.launcher
    joblib_pool.stop()  # no worker of this test outlives it
    joblib_pool._stopped.clear()


def worker_state() -> tuple[int, bool]:
    """In a worker: its pid, and whether a job's modules (torch's optimizer machinery too) are imported."""
    return os.getpid(), all(
        m in sys.modules for m in ("rlpipe.jobs.train_job", "rlpipe.train", "torch._dynamo")
    )


def test_the_settings_are_the_ones_the_launcher_passes_to_joblib(launcher):
    given = {
        k: v for k, v in OmegaConf.to_container(launcher).items() if k != "_target_"
    }  # as Hydra passes them
    settings = dict(JoblibLauncher(**given).joblib)  # what its `launch` gives joblib
    settings["backend"] = "loky"
    process_joblib_cfg(settings)
    assert joblib_pool.parallel_settings(launcher) == settings


def test_the_jobs_run_in_the_workers_warmed_before_them(launcher, tmp_path):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db")
    warming = joblib_pool.start(launcher, tracking)
    assert warming is not None
    warming.join(timeout=300)
    warmed = set(joblib_pool._pool()._processes)
    jobs = Parallel(**joblib_pool.parallel_settings(launcher))(delayed(worker_state)() for _ in range(4))
    assert {warm for _, warm in jobs} == {True}
    assert (
        len(warmed) == 2 and {pid for pid, _ in jobs} <= warmed
    )  # the pool's warmed workers, not fresh ones


def test_a_sweep_stopped_before_its_jobs_kills_the_warmed_workers(launcher, tmp_path):
    warming = joblib_pool.start(launcher, TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db"))
    joblib_pool.stop()
    warming.join(timeout=60)
    assert not warming.is_alive()
    pool = joblib_pool._pool()
    assert pool is None or not any(p.is_alive() for p in pool._processes.values())


def test_another_launcher_starts_no_pool(tmp_path):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert joblib_pool.start(cfg.hydra.launcher, TrackingConfig(uri=f"sqlite:///{tmp_path}/m.db")) is None


def parent_and_collector() -> tuple[int, bool, int]:
    return os.getppid(), gc.isenabled(), gc.get_freeze_count()


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads the fork server's /proc entries")
def test_the_workers_are_forked_from_a_server_that_only_imported(launcher, tmp_path):
    store = tmp_path / "mlflow.db"
    warming = joblib_pool.start(launcher, TrackingConfig(uri=f"sqlite:///{store}"))
    assert warming is not None
    warming.join(timeout=300)
    server = forkserver._forkserver._forkserver_pid
    seen = Parallel(**joblib_pool.parallel_settings(launcher))(
        delayed(parent_and_collector)() for _ in range(2)
    )
    assert {parent for parent, _, _ in seen} == {
        server
    }  # one import of torch, SB3 and MLflow for both workers
    # what the server imported is frozen: no worker's search for cycles walks it, and the searches are on
    assert all(on and frozen > 500_000 for _, on, frozen in seen)
    assert "libtorch" in Path(f"/proc/{server}/maps").read_text()
    opened = {os.readlink(fd) for fd in Path(f"/proc/{server}/fd").iterdir()}
    assert not any(str(store) in path for path in opened)  # no store handle crosses a fork
    assert store.exists()  # the workers, warmed after the fork, opened it themselves

    joblib_pool.release()
    joblib_pool._fork_server._release.join(timeout=120)
    assert not Path(f"/proc/{server}").exists()  # ended and reaped
    assert context.get_start_method() is None  # loky's own start method for whatever runs next


def test_without_a_fork_server_the_workers_start_on_their_own(launcher, tmp_path, monkeypatch):
    def refused() -> None:
        raise OSError("no fork server here")

    monkeypatch.setattr(forkserver, "ensure_running", refused)
    warming = joblib_pool.start(launcher, TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db"))
    assert warming is not None
    warming.join(timeout=300)
    assert context.get_start_method() is None  # loky's own workers
    jobs = Parallel(**joblib_pool.parallel_settings(launcher))(delayed(worker_state)() for _ in range(2))
    assert {warm for _, warm in jobs} == {True}
