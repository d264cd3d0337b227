"""What the comparison notebook reads from a store: a sweep's runs, params, reports, picks, curves and
gates, and an experiment's family tree, as recorded. Read-only; nothing here computes.

Every helper takes the tracking URI explicitly and reads that store through the retrying client
the process bound for it (`rlpipe.tracking.store.bind`: the store checked once however many
helpers a notebook calls; `rlpipe.tracking.queries`); none of them sets MLflow's global tracking
URI, creates an experiment or writes anything. Failed runs appear in `runs_frame` (status FAILED,
metrics NaN); the artifact readers (`run_reports`, `curves_frame`, the reports in `gate_records`)
need finished runs. What the notebook computes from these (the grid, the runs featured, the regime table, the
drawdown, the gate table, the seeds' spread, the chained equity) is in `rlpipe.reports`:
`run_comparison`, `gate_table`, `sweep_frames`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import CHALLENGER, CHAMPION, Registry
from rlpipe.tracking.rows import AXES, GateRecord, SweepGates
from rlpipe.tracking.store import bind
from rlpipe.tracking.tracker import Tracker

_ID_COLUMNS = ["run_id", "run_name", "status", "seed", *AXES, "config_hash", "bars_per_year"]
_TAG_COLUMNS = ["verdict", "sweep_verdict", "model_version", "classification", "deployment"]
CURVE_COLUMNS = ["run_id", "slice", "role", "regime", "policy", "bar", "time", "equity", "fees", "turnover"]
"""The columns of `curves_frame`, as the runs recorded them."""
LINEAGE_COLUMNS = ["run_id", "version", "parent_version", "generation", "total_timesteps", "validation"]
LINEAGE_COLUMNS += ["forgetting"]


def latest_sweep_id(uri: str, experiment: str) -> str | None:
    """The sweep id of the newest sweep parent run in `experiment`, or None when there is none."""
    return queries.latest_sweep_id(Tracker(uri, experiment))


def runs_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """One row per job run of `sweep_id`, oldest first.

    Columns: run_id, run_name, status, seed (int), timesteps (int), reward, agent, env,
    config_hash, bars_per_year (the data's, `data/bars_per_year`: what annualises a Sharpe),
    verdict (run level), sweep_verdict (configuration level), model_version, classification,
    deployment, then `test_<aggregate>` for every `test/<aggregate>` metric (test_total,
    test_max_drawdown, test_consistency, test_sharpe_mean, ...; NaN where missing), then
    `validation_<aggregate>` likewise (what ranks the runs).
    """
    records = []
    for run in queries.job_runs(Tracker(uri, experiment), sweep_id):
        r = queries.job_row(run)
        records.append(
            {
                **{
                    k: v
                    for k, v in dataclasses.asdict(r).items()
                    if k not in ("test", "validation", "params")
                },
                "bars_per_year": run.data.metrics.get(K.BARS_PER_YEAR, math.nan),
                **_prefixed(r.test, "test"),
                **_prefixed(r.validation, "validation"),
            }
        )
    first = ["test_total", "test_max_drawdown", "test_consistency"]
    others = sorted({k for rec in records for k in rec if k.startswith("test_")} - set(first))
    others += sorted({k for rec in records for k in rec if k.startswith("validation_")})
    frame = pd.DataFrame(records).reindex(columns=[*_ID_COLUMNS, *_TAG_COLUMNS, *first, *others])
    for col in ("seed", "timesteps"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in [*first, *others, "bars_per_year"]:
        frame[col] = frame[col].astype(float)
    return frame


def run_params(uri: str, experiment: str, sweep_id: str) -> dict[str, dict[str, str]]:
    """Each job run's params as recorded (the config it ran, flattened), by run id, oldest first."""
    return {r.run_id: r.params for r in queries.job_rows(Tracker(uri, experiment), sweep_id)}


def _prefixed(aggregates: dict[str, float], role: str) -> dict[str, float]:
    return {f"{role}_{k}": v for k, v in aggregates.items()}


def run_reports(uri: str, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Each finished run's report/report.json (its model, slices and gates), by run id, in order."""
    client = bind(uri)
    return {run_id: queries.load_json(client, run_id, "report/report.json") for run_id in run_ids}


def champion_and_challengers(uri: str, experiment: str, sweep_id: str, model_name: str) -> dict[str, Any]:
    """The sweep's decision (from its parent's sweep/report.json) next to the registry's aliases now.

    Returns {"sweep_id", "parent_run_id" (None without a parent run), "champion": {"run_id",
    "version"} or None, "challengers": [{"run_id", "version"}, ...], "promoted": bool,
    "aliases": {"champion": version or None, "challenger": version or None}, "champion_is_current":
    whether @champion still points at this sweep's champion (a later sweep or a rollback moves it)}.
    Before the sweep step has written its report, champion is None and challengers is empty.
    """
    tracker = Tracker(uri, experiment)
    report = queries.sweep_report(tracker, sweep_id) or {}
    champion: dict[str, Any] | None = report.get("champion")
    registry = Registry(tracker.client, model_name)
    aliases = {alias: registry.alias_version(alias) for alias in (CHAMPION, CHALLENGER)}
    return {
        "sweep_id": sweep_id,
        "parent_run_id": tracker.parent_run(sweep_id),
        "champion": champion,
        "challengers": list(report.get("challengers", [])),
        "promoted": champion is not None,
        "aliases": aliases,
        "champion_is_current": champion is not None and aliases[CHAMPION] == str(champion["version"]),
    }


def curves_frame(uri: str, run_ids: Iterable[str], role: str | None = "test") -> pd.DataFrame:
    """The curves of `run_ids` (curves/equity.parquet) in long format, one `run_id` column added.

    Columns (`CURVE_COLUMNS`): run_id, slice, role, regime, policy (agent, buy_and_hold, flat,
    random), bar, time (UTC bar timestamp), equity (start = 1), fees and turnover (cumulative,
    fractions / multiples of the starting capital); only slices of `role` unless it is None. Runs
    recorded before a column existed leave it NaN.
    """
    client = bind(uri)
    parts = []
    for run_id in run_ids:
        part = queries.equity_curves(client, run_id, **({} if role is None else {"role": role}))
        parts.append(part.assign(run_id=run_id))
    if not parts:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    return pd.concat(parts, ignore_index=True).reindex(columns=CURVE_COLUMNS)


def gate_records(uri: str, experiment: str, sweep_id: str) -> SweepGates:
    """Every job run's recorded gates (its `gate/<name>` metrics and its report's gates) and the
    sweep report's configuration gates, for `rlpipe.reports.gate_table.gate_frame`."""
    tracker = Tracker(uri, experiment)
    runs = [
        GateRecord(
            queries.job_row(r),
            {k.removeprefix("gate/"): v for k, v in r.data.metrics.items() if k.startswith("gate/")},
            _run_report_gates(tracker.client, r),
        )
        for r in queries.job_runs(tracker, sweep_id)
    ]
    return SweepGates(runs, queries.sweep_report(tracker, sweep_id) or {})


def _run_report_gates(client: MlflowClient, run: Run) -> dict[str, dict[str, Any]]:
    """The run gates of a finished run's report/report.json ({} without one): value, threshold, ..."""
    if run.info.status != "FINISHED":
        return {}
    if not any(f.path == "report/report.json" for f in client.list_artifacts(run.info.run_id, "report")):
        return {}
    report = queries.load_json(client, run.info.run_id, "report/report.json")
    gates: dict[str, dict[str, Any]] = report.get("gates", {})
    return gates


def lineage_frame(uri: str, experiment: str, metric: str = "sharpe_mean") -> pd.DataFrame:
    """The family tree of continued models: every FINISHED job run of `experiment` that recorded its
    lineage (`rlpipe.generation`), one row each with its generation, its parent and its validation
    `metric` (`LINEAGE_COLUMNS`)."""
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
    return pd.DataFrame(rows, columns=LINEAGE_COLUMNS)
