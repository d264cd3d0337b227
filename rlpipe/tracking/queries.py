"""Read-side helpers: the runs of a sweep as plain rows (for the CLI table and the notebook)."""

from __future__ import annotations

import math
import tempfile
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient


def job_runs(client: MlflowClient, experiment: str, sweep_id: str) -> list[Run]:
    """The job runs (not the parent) of `sweep_id`, oldest first; [] if the experiment does not exist."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`rlpipe.sweep_id` = '{sweep_id}' and tags.`rlpipe.kind` = 'job'",
        order_by=["attributes.start_time ASC"],
        max_results=10000,
    )


def sweep_runs(uri: str, experiment: str, sweep_id: str) -> list[dict[str, Any]]:
    """One row per run of `sweep_id`, oldest first: status, seed, verdict, test figures, ids."""
    found = job_runs(MlflowClient(uri), experiment, sweep_id)
    rows = []
    for r in found:
        t, m = r.data.tags, r.data.metrics
        rows.append(
            {
                "run_id": r.info.run_id,
                "run_name": r.info.run_name,
                "status": r.info.status,
                "seed": t.get("rlpipe.seed", ""),
                "config_hash": t.get("rlpipe.config_hash", ""),
                "verdict": t.get("rlpipe.verdict", "-" if r.info.status == "FINISHED" else "failed"),
                "test_total": m.get("test/total", math.nan),
                "test_max_drawdown": m.get("test/max_drawdown", math.nan),
                "consistency": m.get("test/consistency", math.nan),
                "model_version": t.get("rlpipe.model_version", ""),
                "error": t.get("rlpipe.error", ""),
                "classification": t.get("rlpipe.classification", ""),
                "deployment": t.get("rlpipe.deployment", ""),
                "regimes_missing": t.get("rlpipe.regimes_missing", "none"),
                "sweep_verdict": t.get("rlpipe.sweep_verdict", ""),
                "test": {
                    k.removeprefix("test/"): v
                    for k, v in m.items()
                    if k.startswith("test/") and k.count("/") == 1
                },
            }
        )
    return rows


def equity_curves(run_id: str, uri: str | None = None) -> pd.DataFrame:
    """The run's equity curves (slice, role, regime, policy, bar, equity) from `curves/equity.parquet`."""
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="curves/equity.parquet", dst_path=tmp, tracking_uri=uri
        )
        return pd.read_parquet(path)
