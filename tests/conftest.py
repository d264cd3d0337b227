"""Shared fixtures: compose the real config with the smoke preset and a temporary store; one real
smoke sweep through the CLI for the tests that read a sweep back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rlpipe.cli.compose import train_job
from rlpipe.cli.schemas import register_configs
from rlpipe.data.data_config import Segment
from rlpipe.jobs.job_config import TrainJob

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("RLPIPE_ROOT", str(ROOT))
if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: workers side by side, one thread each (and their
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # jobs, which take OMP_NUM_THREADS: threads=null)
register_configs()


def cli(module: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the project root, as a user runs it."""
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def drawn_plots(uri: str, run_id: str, timeout: float = 180.0) -> list[str]:
    """The run's `plots/` once the process a job started has drawn them (`rlpipe.jobs.tear_sheet_job`)."""
    from mlflow.tracking import MlflowClient

    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while (state := client.get_run(run_id).data.tags.get("rlpipe.tear_sheets")) == "pending":
        assert time.monotonic() < deadline, f"run {run_id}: tear sheets still pending after {timeout} s"
        time.sleep(0.5)
    assert state is not None and state.startswith("drawn: "), state
    return sorted(f.path for f in client.list_artifacts(run_id, "plots"))


def regime_schedule(
    segments: Sequence[Segment], start: str, freq: str
) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The (regime, first bar, last bar) of every segment of a synthetic market, in order: the schedule
    worked out from the declaration alone, to check the market's `regime` column and the slices against."""
    step = pd.Timedelta(freq)
    t = pd.Timestamp(start, tz="UTC")
    out = []
    for seg in segments:
        n = int(pd.Timedelta(days=seg.days) / step)
        out.append((seg.regime, t, t + (n - 1) * step))
        t = t + n * step
    return out


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


@dataclass(frozen=True)
class Sweep:
    """A finished smoke sweep run through the CLI: its process, store and folder."""

    proc: subprocess.CompletedProcess
    uri: str
    folder: Path


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """`python -m rlpipe.train -m experiment=smoke seed=1,2 reward=pnl,pnl_fees` into a fresh store."""
    tmp = tmp_path_factory.mktemp("smoke_sweep")
    uri = f"sqlite:///{tmp}/mlflow.db"
    proc = cli(
        "rlpipe.train", "-m", f"hydra.sweep.dir={tmp}/multirun", "experiment=smoke", "seed=1,2",
        "reward=pnl,pnl_fees", f"tracking.uri={uri}", "plots=true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
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


def crownable(uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a sweep step may crown: sweep verdict promote, and recorded with registry.promote=true
    (the smoke preset's runs are judged, never crowned)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    promote = runs["run_id"].map(lambda r: client.get_run(r).data.params.get("registry.promote") == "True")
    return runs[(runs["sweep_verdict"] == "promote") & promote]


def recorded_version(tracker, registry, name: str, curves: list, tags: dict[str, str] | None = None,
                     metrics: dict[str, float] | None = None) -> str:  # fmt: skip
    """A FINISHED run holding the agent's test curves (`curves/equity.parquet`, one equity array per
    test slice) and `metrics`, its model (a constant pyfunc) registered as a version of `registry`
    with the run's `tags`; returns the version. A stand-in for a trained job where only what the
    job records matters (the sweep step, the health monitor)."""
    import mlflow
    import numpy as np
    from mlflow.pyfunc import PythonModel

    class Constant(PythonModel):
        def predict(self, context, model_input, params=None):
            return [0] * len(model_input)

    slices = [
        {"slice": f"test_{i}", "role": "test", "regime": "bull", "policy": "agent", "bar": np.arange(len(c)),
         "equity": np.asarray(c, dtype=float)}
        for i, c in enumerate(curves)
    ]  # fmt: skip
    frame = pd.concat([pd.DataFrame(s) for s in slices], ignore_index=True)
    with tracker.run(name, tags or {}) as run:
        run.log_table(frame, "curves/equity.parquet")
        run.log_metrics({"data/bars_per_year": 8760.0, **(metrics or {})})
        folder = Path(tracker.client.tracking_uri.removeprefix("sqlite:///")).parent / "models" / name
        mlflow.pyfunc.save_model(str(folder), python_model=Constant(), pip_requirements=["mlflow"])
        model = run.log_model_dir(folder, "policy")
        return registry.register(model, run.run_id, dict(tags or {}))
