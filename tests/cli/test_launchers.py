"""Sweeps whose jobs run in other processes: joblib, submitit (Slurm's local stand-in) and Ray.

Each sweep goes through the real CLI: the callback opens the parent run in the launching process,
the jobs record into the same sqlite store from their own processes, and the sweep step runs once
after them.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
from pathlib import Path

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from tests.support.project import CONF, cli, drawn_plots


def has_plugin(name: str) -> bool:
    return importlib.util.find_spec(f"hydra_plugins.{name}") is not None


needs_submitit = pytest.mark.skipif(
    not has_plugin("hydra_submitit_launcher"), reason="needs the slurm extra: pip install -e '.[slurm]'"
)
needs_ray = pytest.mark.skipif(
    not has_plugin("hydra_ray_launcher"), reason="needs the ray extra: pip install -e '.[ray]'"
)


def launched_sweep(tmp: Path, *launcher: str) -> tuple[subprocess.CompletedProcess, MlflowClient, list[Run]]:
    """A 2-seed smoke sweep with the given launcher overrides; its process, store and runs."""
    uri = f"sqlite:///{tmp}/mlflow.db"
    proc = cli(
        "rlpipe.train", "-m", f"hydra.sweep.dir={tmp}/multirun", "experiment=smoke", "seed=1,2",
        f"tracking.uri={uri}", *launcher,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    return proc, client, client.search_runs([exp.experiment_id])


def assert_one_finished_sweep(client: MlflowClient, runs: list[Run]) -> list[Run]:
    """Exactly one parent run, FINISHED with its report; both jobs FINISHED under it. Returns the jobs."""
    parents = [r for r in runs if r.data.tags["rlpipe.kind"] == "sweep"]
    jobs = [r for r in runs if r.data.tags["rlpipe.kind"] == "job"]
    assert len(parents) == 1, "the sweep step must run once, in the launching process"
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert sorted(r.data.params["seed"] for r in jobs) == ["1", "2"]
    assert {r.info.status for r in jobs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in jobs} == {parent.info.run_id}
    assert {r.data.tags["rlpipe.sweep_id"] for r in jobs} == {parent.data.tags["rlpipe.sweep_id"]}
    mlflow.set_tracking_uri(client.tracking_uri)
    report = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/sweep/report.md")
    assert parent.data.tags["rlpipe.sweep_id"] in report
    return jobs


@pytest.mark.slow  # fresh workers import torch, SB3 and MLflow: 38-41 s on 2 quiet cores, 100 s loaded
def test_joblib_sweep_splits_the_cores_between_its_parallel_jobs(tmp_path):
    _, client, runs = launched_sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    jobs = assert_one_finished_sweep(client, runs)
    omp = os.environ.get("OMP_NUM_THREADS")  # set (a Ray task, a test worker): threads=null takes it
    expected = int(omp) if omp else max(1, len(os.sched_getaffinity(0)) // 2)
    assert {r.data.params["threads_resolved"] for r in jobs} == {str(expected)}


@pytest.mark.slow
@needs_submitit
def test_submitit_local_sweep_runs_the_sweep_step_once_after_its_jobs(tmp_path):
    proc, client, runs = launched_sweep(tmp_path, "hydra/launcher=submitit_local")
    jobs = assert_one_finished_sweep(client, runs)
    assert list((tmp_path / "multirun" / ".submitit").iterdir())  # the jobs went through submitit
    assert proc.stdout.count("champion:") + proc.stderr.count("champion:") == 1
    # a cluster sweep whose submitting process died is finished by hand: same parent run, same report
    sweep_id = jobs[0].data.tags["rlpipe.sweep_id"]
    promote = cli("rlpipe.promote", f"sweep_id={sweep_id}", f"tracking.uri={client.tracking_uri}")
    assert promote.returncode == 0, promote.stderr[-2000:]
    assert_one_finished_sweep(client, client.search_runs([jobs[0].info.experiment_id]))


@pytest.mark.slow
@needs_ray
def test_ray_local_sweep_runs_the_sweep_step_once_after_its_jobs(tmp_path):
    # address null: ray.init starts a local cluster for the sweep and stops it at exit
    _, client, runs = launched_sweep(
        tmp_path, "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2", "plots=true"
    )
    jobs = assert_one_finished_sweep(client, runs)
    for job in jobs:  # Ray ends what a task started: the sweep's drawing draws them once it is done
        assert len(drawn_plots(client.tracking_uri, job.info.run_id)) == 14


def launcher_config(*overrides: str) -> dict:
    """`hydra.launcher` of conf/train.yaml composed with the overrides, resolved."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True)


def test_joblib_launcher_comes_with_the_core_dependencies():
    params = launcher_config("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert params["_target_"].endswith("JoblibLauncher") and params["n_jobs"] == 2


@needs_submitit
def test_slurm_preset_composes_into_parameters_submitit_accepts(tmp_path, monkeypatch):
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    monkeypatch.setenv("SBATCH_PARTITION", "cpu")
    params = launcher_config(
        "hydra/launcher=slurm", "hydra.launcher.cpus_per_task=8", f"hydra.sweep.dir={tmp_path}"
    )
    assert params.pop("_target_").endswith("SlurmLauncher")
    assert (params["partition"], params["cpus_per_task"], params["tasks_per_node"]) == ("cpu", 8, 1)
    assert "OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK" in params["setup"][0]
    # the launcher's own mapping onto submitit's executor, which refuses unknown keys; the
    # executor looks for srun on PATH, nothing is submitted
    fake_srun = tmp_path / "srun"
    fake_srun.write_text("#!/bin/sh\n")
    fake_srun.chmod(fake_srun.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    folder, max_num_timeout = params.pop("submitit_folder"), params.pop("max_num_timeout")
    executor = submitit.AutoExecutor(cluster="slurm", folder=folder, slurm_max_num_timeout=max_num_timeout)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})


@needs_ray
def test_ray_cluster_preset_joins_a_running_cluster_without_sizing_it():
    params = launcher_config("hydra/launcher=ray_cluster")
    assert params["_target_"].endswith("RayLauncher")
    init = params["ray"]["init"]
    assert init["address"] == "auto"
    # the launcher's own default (setdefault, 75 MB) must not reach ray.init: Ray refuses any object
    # store size when it joins a cluster (facebookresearch/hydra#2893)
    assert "object_store_memory" in init and init["object_store_memory"] is None
    assert params["ray"]["remote"] == {"num_cpus": 1}
