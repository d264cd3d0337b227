"""The family tree of continued models, read back for the notebook: one row per job run with its
generation, its parent and its validation score."""

from __future__ import annotations

import math

import pandas as pd

from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker

COLUMNS = ["run_id", "version", "parent_version", "generation", "total_timesteps", "validation", "forgetting"]


def lineage_frame(uri: str, experiment: str, metric: str = "sharpe_mean") -> pd.DataFrame:
    """Every FINISHED job run of `experiment` that recorded its lineage (`rlpipe.generation`)."""
    runs = Tracker(uri, experiment).search(
        f"tags.`{T.KIND}` = '{T.JOB}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time ASC"],
    )
    rows = [
        {
            "run_id": r.info.run_id,
            "version": r.data.tags.get(T.MODEL_VERSION, ""),
            "parent_version": r.data.tags.get(T.PARENT_VERSION, ""),
            "generation": int(r.data.tags[T.GENERATION]),
            "total_timesteps": int(r.data.tags.get(T.TOTAL_TIMESTEPS, 0)),
            "validation": r.data.metrics.get(f"validation/{metric}", math.nan),
            "forgetting": r.data.tags.get(T.FORGETTING, ""),
        }
        for r in runs
        if T.GENERATION in r.data.tags
    ]
    return pd.DataFrame(rows, columns=COLUMNS)
