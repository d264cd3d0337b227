"""Read-side helpers: the runs of a sweep as plain rows (for the CLI table and the notebook)."""

from __future__ import annotations

import math
from typing import Any

from mlflow.tracking import MlflowClient

from rlpipe.tracking.store import ensure_experiment


def sweep_runs(uri: str, experiment: str, sweep_id: str) -> list[dict[str, Any]]:
    """One row per run of `sweep_id`, oldest first: status, seed, verdict, test figures, ids."""
    exp_id = ensure_experiment(uri, experiment)
    client = MlflowClient(uri)
    found = client.search_runs(
        [exp_id],
        filter_string=f"tags.`rlpipe.sweep_id` = '{sweep_id}'",
        order_by=["attributes.start_time ASC"],
    )
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
            }
        )
    return rows
