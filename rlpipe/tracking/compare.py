"""Read-only views of a sweep as pandas DataFrames, for the comparison notebook.

Every helper takes the tracking URI explicitly and reads that store through its own client
(`rlpipe.tracking.queries`); none of them sets MLflow's global tracking URI, creates an
experiment or writes anything. Failed runs appear in `runs_frame` (status FAILED, metrics NaN);
the artifact readers (`regime_frame`, `curves_frame`) need finished runs. The gate table is
`rlpipe.tracking.gate_table`; what the notebook computes from these frames, `rlpipe.reports.sweep_frames`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking.registry import CHALLENGER, CHAMPION, Registry
from rlpipe.tracking.tracker import Tracker

AXES = ("timesteps", "reward", "agent", "env")
"""Columns of `runs_frame` that a sweep typically varies besides the seed."""
_ID_COLUMNS = ["run_id", "run_name", "status", "seed", *AXES, "config_hash", "bars_per_year"]
_TAG_COLUMNS = ["verdict", "sweep_verdict", "model_version", "classification", "deployment"]
_CURVE_COLUMNS = ["run_id", "slice", "role", "regime", "policy", "bar", "time", "equity", "drawdown"]
_CURVE_COLUMNS += ["fees", "turnover"]


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


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """The sweep axes (timesteps, reward, agent, env) that take more than one value in `frame`.

    `config_hash` is added when those axes do not tell the configurations apart (a sweep over
    some other key, such as env.maker_fee); with a single configuration, `reward` is returned so
    that a grid still has one column.
    """
    axes = [a for a in AXES if frame[a].nunique(dropna=False) > 1]
    combos = frame[axes].drop_duplicates().shape[0] if axes else 1
    if frame["config_hash"].nunique() > combos:
        axes.append("config_hash")
    return axes or ["reward"]


def grid(frame: pd.DataFrame, value: str = "test_total", columns: list[str] | None = None) -> pd.DataFrame:
    """Pivot `frame` (from `runs_frame`): one row per seed, one column per configuration.

    Columns are `columns` or else `varying_axes(frame)` (a MultiIndex when several vary). Cells
    hold `value`: the mean over repeated runs for a numeric column, the latest run's value for a
    text column such as `verdict` or `sweep_verdict`. Missing combinations are NaN.
    """
    cols = columns or varying_axes(frame)
    numeric = pd.api.types.is_numeric_dtype(frame[value])
    return frame.pivot_table(
        index="seed", columns=cols, values=value, aggfunc="mean" if numeric else "last", dropna=False
    ).sort_index()


def regime_frame(uri: str, run_ids: Iterable[str], role: str = "test") -> pd.DataFrame:
    """Per run x regime, from each run's report/report.json: agent vs. buy-and-hold on `role` slices.

    Columns: run_id, seed, timesteps, reward, regime, slices (how many slices of that regime),
    agent_total and buy_and_hold_total (mean total after fees over those slices), edge
    (agent_total - buy_and_hold_total).
    """
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    rows: list[dict[str, Any]] = []
    for run_id in run_ids:
        report = queries.load_json(client, run_id, "report/report.json")
        model = report.get("model", {})
        slices = pd.DataFrame(report["slices"])
        totals = slices[slices["role"] == role].pivot_table(
            index=["regime", "slice"], columns="policy", values="total"
        )
        for regime, part in totals.groupby(level="regime", sort=True):
            agent = float(part["agent"].mean()) if "agent" in part else math.nan
            bh = float(part["buy_and_hold"].mean()) if "buy_and_hold" in part else math.nan
            ident = {k: model.get(k) for k in ("seed", "timesteps", "reward")}
            rows.append({"run_id": run_id, **ident, "regime": regime, "slices": len(part)})
            rows[-1].update({"agent_total": agent, "buy_and_hold_total": bh, "edge": agent - bh})
    columns = ["run_id", "seed", "timesteps", "reward", "regime", "slices"]
    return pd.DataFrame(rows, columns=[*columns, "agent_total", "buy_and_hold_total", "edge"])


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


def featured_runs(frame: pd.DataFrame, picks: dict[str, Any], n: int = 3) -> pd.DataFrame:
    """The runs worth a closer look: the champion and challengers, else the best `n` by validation
    Sharpe (never by a test result: the test slices gate, they never choose).

    `frame` comes from `runs_frame`, `picks` from `champion_and_challengers`. Returns the rows of
    `frame` with a `pick` column ("champion", "challenger" or "best validation"), in that order.
    """
    chosen = [(picks["champion"]["run_id"], "champion")] if picks.get("champion") else []
    chosen += [(c["run_id"], "challenger") for c in picks.get("challengers", [])]
    if not chosen:
        done = frame[frame["status"] == "FINISHED"]
        if "validation_sharpe_mean" in done:
            done = done.sort_values("validation_sharpe_mean", ascending=False)
        chosen = [(rid, "best validation") for rid in done["run_id"].head(n)]
    order = pd.DataFrame(chosen, columns=["run_id", "pick"])
    return order.merge(frame, on="run_id", how="left")


def curves_frame(uri: str, run_ids: Iterable[str], role: str | None = "test") -> pd.DataFrame:
    """The curves of `run_ids` (curves/equity.parquet) in long format, one `run_id` column added.

    Columns: run_id, slice, role, regime, policy (agent, buy_and_hold, flat, random), bar, time
    (UTC bar timestamp), equity (start = 1), drawdown (equity under its running peak, <= 0),
    fees and turnover (cumulative, fractions / multiples of the starting capital); only slices of
    `role` unless it is None. Runs recorded before a column existed leave it NaN.
    """
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    parts = []
    for run_id in run_ids:
        part = queries.equity_curves(client, run_id)
        parts.append((part if role is None else part[part["role"] == role]).assign(run_id=run_id))
    if not parts:
        return pd.DataFrame(columns=_CURVE_COLUMNS)
    frame = pd.concat(parts, ignore_index=True)
    peak = frame.groupby(["run_id", "slice", "policy"], sort=False)["equity"].cummax()
    frame["drawdown"] = frame["equity"] / peak - 1.0
    return frame.reindex(columns=_CURVE_COLUMNS)
