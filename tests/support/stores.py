"""Runs recorded into a real store without training: a job's writes with a constant model, from
several processes at once, a sweep step, a registered version holding test curves, and the runs a
sweep step may crown."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient

from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker


class Constant(PythonModel):
    """A model that holds (action 0) on every row: a registered version without a trained agent."""

    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


def job(uri: str, name: str, folder: str) -> str:
    """A job's writes without the training: a run, a metric, a logged model, a registered version."""
    tracker = Tracker(uri, "exp")
    with tracker.run(name, {"rlpipe.kind": "job", "rlpipe.sweep_id": "s"}) as run:
        run.log_metrics({"test/total": 0.1})
        mlflow.pyfunc.save_model(folder, python_model=Constant(), pip_requirements=["mlflow"])
        model = run.log_model_dir(Path(folder), "policy")
        return Registry(tracker.client, "m").register(model, run.run_id, {"rlpipe.sweep_id": "s"})


def worker(uri: str, index: int, jobs: int, tmp: str) -> list[str]:
    return [job(uri, f"w{index}-j{j}", f"{tmp}/w{index}-j{j}") for j in range(jobs)]


def sweep_step(uri: str, champion: str, challengers: list[str]) -> None:
    registry = Registry(Tracker(uri, "exp").client, "m")
    registry.apply_sweep("s", champion, challengers, dict.fromkeys([champion, *challengers], "sweep s"))


def in_processes(fn, args: list[tuple]) -> list:
    with mp.get_context("spawn").Pool(len(args)) as pool:
        return [r.get(timeout=300) for r in [pool.apply_async(fn, a) for a in args]]


def crownable(uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a sweep step may crown: sweep verdict promote, and recorded with registry.promote=true
    (the smoke preset's runs are judged, never crowned)."""
    client = MlflowClient(uri)
    promote = runs["run_id"].map(lambda r: client.get_run(r).data.params.get("registry.promote") == "True")
    return runs[(runs["sweep_verdict"] == "promote") & promote]


def recorded_version(tracker, registry, name: str, curves: list, tags: dict[str, str] | None = None,
                     metrics: dict[str, float] | None = None) -> str:  # fmt: skip
    """A FINISHED run holding the agent's test curves (`curves/equity.parquet`, one equity array per
    test slice) and `metrics`, its model (a constant pyfunc) registered as a version of `registry`
    with the run's `tags`; returns the version. A stand-in for a trained job where only what the
    job records matters (the sweep step, the health monitor)."""
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
