"""One MLflow run per job: params, tags, metrics, artifacts; FAILED with the traceback on a crash."""

from __future__ import annotations

import json
import logging
import tempfile
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)
MAX_PARAM_LEN = 6000


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": value}; lists become their JSON text."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | tuple) else v
    return out


@contextmanager
def job_run(experiment_id: str, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """Open a run; on an exception mark it FAILED, log the traceback as an artifact, re-raise."""
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags))
    run_id = run.info.run_id
    try:
        yield run_id
    except BaseException as exc:
        text = "".join(traceback.format_exception(exc))
        try:
            mlflow.log_text(text, "error/traceback.txt")
            mlflow.set_tag("rlpipe.error", f"{type(exc).__name__}: {exc}"[:5000])
        finally:
            mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def log_params(params: Mapping[str, Any]) -> None:
    """Log flattened params in one batch (values cut to MLflow's length limit)."""
    items = [Param(k, str(v)[:MAX_PARAM_LEN]) for k, v in flatten(params).items()]
    client, run_id = MlflowClient(), _run_id()
    for i in range(0, len(items), 100):
        client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """Log a flat dict of metrics at one step in batches."""
    log_metric_series([(k, float(v), step) for k, v in metrics.items()])


def log_metric_series(points: list[tuple[str, float, int]]) -> None:
    """Log (key, value, step) points in batches of 1000."""
    client, run_id = MlflowClient(), _run_id()
    ms = [Metric(k, v, 0, s) for k, v, s in points]
    for i in range(0, len(ms), 1000):
        client.log_batch(run_id, metrics=ms[i : i + 1000])


def set_tags(tags: Mapping[str, str]) -> None:
    MlflowClient().log_batch(_run_id(), tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_text(text: str, path: str) -> None:
    mlflow.log_text(text, path)


def log_dict(data: dict, path: str) -> None:
    mlflow.log_dict(data, path)


def log_table(frame: pd.DataFrame, path: str) -> None:
    """Log a DataFrame as a Parquet artifact at `path` (e.g. curves/equity.parquet)."""
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        file = Path(tmp) / Path(path).name
        frame.to_parquet(file, index=False)
        mlflow.log_artifact(str(file), str(Path(path).parent))


def log_files(paths: list[Path], artifact_dir: str) -> None:
    for p in paths:
        mlflow.log_artifact(str(p), artifact_dir)


def scratch_dir() -> tempfile.TemporaryDirectory:
    """A temporary directory for files on their way to the artifact store."""
    return tempfile.TemporaryDirectory(prefix="rlpipe-")


def _run_id() -> str:
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active MLflow run; log inside tracking.runs.job_run")
    return run.info.run_id


def find_parent_run(experiment_id: str, sweep_id: str) -> str | None:
    """The parent run of a sweep, if one was created."""
    found = MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`rlpipe.sweep_id` = '{sweep_id}' and tags.`rlpipe.kind` = 'sweep'",
        max_results=1,
    )
    return found[0].info.run_id if found else None


def ensure_parent_run(experiment_id: str, sweep_id: str) -> str:
    """The sweep's parent run, created (RUNNING) if it does not exist yet."""
    existing = find_parent_run(experiment_id, sweep_id)
    if existing:
        return existing
    run = MlflowClient().create_run(
        experiment_id,
        run_name=f"sweep-{sweep_id}",
        tags={"rlpipe.sweep_id": sweep_id, "rlpipe.kind": "sweep"},
    )
    return run.info.run_id


def set_run_tags(run_id: str, tags: Mapping[str, str]) -> None:
    """Tag any run (not only the active one)."""
    MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def write_parent(
    run_id: str, md: str, data: dict, plot: Path, metrics: Mapping[str, float], tags: Mapping[str, str]
) -> None:
    """Write the sweep report, plot, metrics and tags to the parent run and mark it FINISHED."""
    client = MlflowClient()
    client.log_text(run_id, md, "sweep/report.md")
    client.log_dict(run_id, data, "sweep/report.json")
    client.log_artifact(run_id, str(plot), "sweep")
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    client.set_terminated(run_id, "FINISHED")
