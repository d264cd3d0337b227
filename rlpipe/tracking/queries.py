"""Read side of a store: the runs of a sweep as one typed row, reports and curves. Writes nothing."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rlpipe.errors import MissingArtifactError
from rlpipe.tracking import tags as T
from rlpipe.tracking.rows import JobRow
from rlpipe.tracking.store import RetryingClient
from rlpipe.tracking.tracker import Tracker


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def job_row(r: Run) -> JobRow:
    """The typed row of a job run (values parsed once, here)."""
    t, p, m = r.data.tags, r.data.params, r.data.metrics
    status = r.info.status
    return JobRow(
        run_id=r.info.run_id,
        run_name=r.info.run_name,
        status=status,
        seed=_int(t.get(T.SEED, p.get("seed"))),
        config_hash=t.get(T.CONFIG_HASH, ""),
        label=t.get(T.CONFIG_LABEL, t.get(T.CONFIG_HASH, "")),
        timesteps=_int(p.get("timesteps")),
        agent=t.get(T.AGENT, ""),
        env=t.get(T.ENV, ""),
        reward=t.get(T.REWARD, ""),
        verdict=t.get(T.VERDICT, "-") if status in ("FINISHED", "RUNNING") else "failed",
        sweep_verdict=t.get(T.SWEEP_VERDICT, ""),
        classification=t.get(T.CLASSIFICATION, ""),
        deployment=t.get(T.DEPLOYMENT, ""),
        regimes_missing=tuple(m for m in t.get(T.REGIMES_MISSING, "").split(",") if m and m != "none"),
        model_version=t.get(T.MODEL_VERSION, ""),
        error=t.get(T.ERROR, ""),
        promotable=t.get(T.PROMOTABLE, "true") != "false",
        test=_role(m, "test"),
        validation=_role(m, "validation"),
        sweep_id=t.get(T.SWEEP_ID, ""),
        candidates=_int(t.get(T.CANDIDATES)) or 1,
        timesteps_kept=_int(t.get(T.SELECTED_TIMESTEPS)),
        data_digest=t.get(T.DATA_DIGEST, ""),
        generation=_int(t.get(T.GENERATION)) or 0,
        parent_run=t.get(T.PARENT_RUN, ""),
        parent_version=t.get(T.PARENT_VERSION, ""),
        role=t.get(T.ROLE, ""),
        family_parent=m.get(T.FAMILY_PARENT, math.nan),
        family_child=m.get(T.FAMILY_CHILD, math.nan),
        registered_model=t.get(T.REGISTERED_MODEL) or p.get("tracking.registered_model", ""),
        params=dict(p),
        artifact_uri=r.info.artifact_uri or "",
    )


def _role(metrics: dict[str, float], role: str) -> dict[str, float]:
    """The `<role>/<aggregate>` metrics without the prefix (not the per-slice `<role>/<slice>/...`)."""
    return {
        k.removeprefix(f"{role}/"): v
        for k, v in metrics.items()
        if k.startswith(f"{role}/") and k.count("/") == 1
    }


def job_runs(tracker: Tracker, sweep_id: str) -> list[Run]:
    """The job runs (not the parent) of `sweep_id`, oldest first, with the FINISHED runs of earlier
    sweeps it reused instead of rerunning them; [] if the experiment does not exist."""
    query = f"tags.`{T.SWEEP_ID}` = '{sweep_id}' and tags.`{T.KIND}` = '{T.JOB}'"
    own = tracker.search(query, order_by=["attributes.start_time ASC"])
    reused = tracker.search(f"tags.`{T.REUSED_PREFIX}{sweep_id}` = 'true'")
    ids = {r.info.run_id for r in own}
    return sorted(own + [r for r in reused if r.info.run_id not in ids], key=lambda r: r.info.start_time)


def finished_job(
    tracker: Tracker, config_hash: str, seed: int, git_sha: str, registered_model: str, promote: bool
) -> JobRow | None:
    """The newest FINISHED job run of this configuration and seed from the same code, registered in
    `registered_model` with the same `registry.promote`, if any.

    The config hash leaves out where a run is recorded and what the registry may do with it; the
    store and experiment scope this search, and the registered model and `registry.promote` are
    matched here (as the run recorded them in its params), so a reused run's version is one of
    `registered_model` and a promote=false run is never crowned by a promote=true sweep, nor the
    other way round.
    """
    query = (
        f"tags.`{T.KIND}` = '{T.JOB}' and tags.`{T.CONFIG_HASH}` = '{config_hash}' and "
        f"tags.`{T.SEED}` = '{seed}' and tags.`{T.GIT_SHA}` = '{git_sha}' and "
        f"params.`tracking.registered_model` = '{registered_model}' and "
        f"params.`registry.promote` = '{promote}' and attributes.status = 'FINISHED'"
    )
    found = tracker.search(query, order_by=["attributes.start_time DESC"], max_results=1)
    return job_row(found[0]) if found and found[0].data.tags.get(T.MODEL_VERSION) else None


def explorer_sweeps(tracker: Tracker, sweep_id: str | None) -> int:
    """How many sweeps other than `sweep_id` ran weekly explorers (the weeks before this one).

    Counted once per sweep: the count searches every explorer run the store holds, so the first job
    keeps it on the sweep's parent run (`rlpipe.weekly_week`) and the others read it from there.
    """
    parent = tracker.parent(sweep_id) if sweep_id else None
    if parent is not None and T.WEEK in parent.data.tags:
        return int(parent.data.tags[T.WEEK])
    runs = tracker.search(f"tags.`{T.ROLE}` LIKE 'explorer-%'")
    week = len({r.data.tags.get(T.SWEEP_ID) for r in runs} - {sweep_id})
    if parent is not None:
        tracker.handle(parent.info.run_id).set_tags({T.WEEK: week})
    return week


def job_rows(tracker: Tracker, sweep_id: str) -> list[JobRow]:
    """One typed row per job run of `sweep_id`, oldest first."""
    return [job_row(r) for r in job_runs(tracker, sweep_id)]


def swept(tracker: Tracker, sweep_id: str) -> tuple[str, ...]:
    """The config keys sweep `sweep_id` varies (its parent run's `rlpipe.swept`); () without a parent
    run or a sweep recorded before that tag (until 2026-12)."""
    found = tracker.parent(sweep_id)
    text = found.data.tags.get(T.SWEPT, "") if found else ""
    return tuple(k for k in text.split(",") if k)


def latest_sweep_id(tracker: Tracker) -> str | None:
    """The sweep id of the newest sweep parent run, or None when there is none."""
    found = tracker.search(
        f"tags.`{T.KIND}` = '{T.SWEEP}'", order_by=["attributes.start_time DESC"], max_results=1
    )
    return found[0].data.tags.get(T.SWEEP_ID) if found else None


@dataclass(frozen=True)
class SweepTimes:
    """Where a sweep's job runs spent their time, as they recorded it (seconds)."""

    training: float
    """Sum over the job runs of `time/learn_s` - `time/checkpoint_s`: training proper."""
    scoring: float
    """Sum of `time/checkpoint_s` + `time/overhead_s`: checkpoints scored on validation, data, test
    backtests, gates, report, the policy logged and registered."""
    open: float
    """Sum of the job runs' durations (opened to ended)."""
    busy: float
    """Wall time during which at least one job run was open (the union of their durations)."""
    step: float
    """The sweep step: its parent run's end after the last job run's end (0 when not recorded)."""


def sweep_times(tracker: Tracker, sweep_id: str, since_ms: int = 0) -> SweepTimes:
    """The recorded times of the job runs of `sweep_id` opened at or after `since_ms` (Unix ms; runs
    reused from earlier sweeps cost this one nothing and are not counted) and of its sweep step."""
    query = f"tags.`{T.SWEEP_ID}` = '{sweep_id}' and tags.`{T.KIND}` = '{T.JOB}'"
    runs = [r for r in tracker.search(query) if r.info.start_time >= since_ms and r.info.end_time]
    m = [r.data.metrics for r in runs]
    learn, scored = (
        sum(x.get("time/learn_s", 0.0) for x in m),
        sum(x.get("time/checkpoint_s", 0.0) for x in m),
    )
    spans = sorted((r.info.start_time / 1000, r.info.end_time / 1000) for r in runs)
    busy, reach = 0.0, -math.inf
    for lo, hi in spans:  # the union of the spans, left to right
        busy += max(hi - max(lo, reach), 0.0)
        reach = max(reach, hi)
    parent = tracker.parent_run(sweep_id)
    ended = tracker.client.get_run(parent).info.end_time if parent else None
    step = max(ended / 1000 - reach, 0.0) if ended and spans else 0.0
    return SweepTimes(
        training=learn - scored,
        scoring=scored + sum(x.get("time/overhead_s", 0.0) for x in m),
        open=sum(hi - lo for lo, hi in spans),
        busy=busy,
        step=step,
    )


def load_json(client: MlflowClient, run_id: str, path: str) -> dict[str, Any]:
    """A JSON artifact of a run."""
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        local = client.download_artifacts(run_id, path, tmp)
        data: dict[str, Any] = json.loads(Path(local).read_text())
    return data


def run_metrics(client: MlflowClient, run_id: str) -> dict[str, float]:
    """A run's latest metric values.

    Raises:
        MissingArtifactError: the store holds no run `run_id`.
    """
    try:
        return dict(client.get_run(run_id).data.metrics)
    except MlflowException as exc:
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        raise MissingArtifactError(f"run {run_id}: not in the store ({str(exc.message)[:200]})") from exc


def sweep_report(tracker: Tracker, sweep_id: str) -> dict[str, Any] | None:
    """The parent's sweep/report.json, or None before the sweep step has written it."""
    parent = tracker.parent_run(sweep_id)
    if parent is None or not any(
        f.path == "sweep/report.json" for f in tracker.client.list_artifacts(parent, "sweep")
    ):
        return None
    return load_json(tracker.client, parent, "sweep/report.json")


def equity_curves(client: MlflowClient, run_id: str, artifact_uri: str = "", **equal: str) -> pd.DataFrame:
    """The run's equity curves (slice, role, regime, policy, bar, equity) from `curves/equity.parquet`;
    only the rows whose columns hold the values of `equal` (role="test", say: read so from the file,
    the rest never converted). `artifact_uri`, the run's artifact root when the caller read the run
    already, spares the store the two lookups of the run that MLflow makes to find it (with every
    metric of the run read each time: 25 ms of the 40 ms a run's curves took in a sweep step)."""
    path = "curves/equity.parquet"
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        try:
            if artifact_uri and isinstance(client, RetryingClient):
                local = client.fetch_artifacts(f"{artifact_uri.rstrip('/')}/{path}", tmp)
            else:
                local = client.download_artifacts(run_id, path, tmp)
            return pd.read_parquet(local, filters=[(k, "==", v) for k, v in equal.items()] or None)
        except (MlflowException, OSError, ValueError) as exc:  # ValueError: pyarrow's corrupt file
            raise MissingArtifactError(
                f"run {run_id}: its {path} cannot be read from the store ({type(exc).__name__}: "
                f"{str(exc)[:200]})"
            ) from exc


def agent_test_curves(client: MlflowClient, run_id: str, artifact_uri: str = "") -> list[np.ndarray]:
    """The agent's equity curve on each test slice of a run (from `curves/equity.parquet`), in the
    order the run recorded its slices, each in bar order: what its sweep gates and its health
    expectation are computed from."""
    test = equity_curves(client, run_id, artifact_uri, role="test", policy="agent")
    return [
        g.sort_values("bar")["equity"].to_numpy(dtype=float) for _, g in test.groupby("slice", sort=False)
    ]
