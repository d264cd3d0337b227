"""Read-only views of a sweep as pandas DataFrames, for the comparison notebook.

Every helper takes the tracking URI explicitly and talks to that store through its own
`MlflowClient`; none of them sets MLflow's global tracking URI, creates an experiment or writes
anything. Failed runs appear in `runs_frame` and `gate_frame` (status FAILED, metrics NaN); the
artifact readers (`regime_frame`, `curves_frame`) need finished runs.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import rlpipe.tracking.store  # noqa: F401  (quiets MLflow's logging and artifact progress bars)
from rlpipe.tracking.queries import job_runs

AXES = ("timesteps", "reward", "agent", "env")
"""Columns of `runs_frame` that a sweep typically varies besides the seed."""
MODEL_NAME = "rlpipe-policy"
"""The registered model's default name (conf/tracking/*.yaml: registered_model)."""
_ID_COLUMNS = ["run_id", "run_name", "status", "seed", *AXES, "config_hash"]
_TAG_COLUMNS = ("verdict", "sweep_verdict", "model_version", "classification", "deployment")


def client_for(uri: str) -> MlflowClient:
    """A client bound to `uri` for both tracking and registry (ignores any global default)."""
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def latest_sweep_id(uri: str, experiment: str = "rlpipe") -> str | None:
    """The sweep id of the newest sweep parent run in `experiment`, or None when there is none."""
    client = client_for(uri)
    exp_id = _experiment_id(client, experiment)
    if exp_id is None:
        return None
    found = client.search_runs(
        [exp_id],
        filter_string="tags.`rlpipe.kind` = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0].data.tags.get("rlpipe.sweep_id") if found else None


def runs_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """One row per job run of `sweep_id`, oldest first.

    Columns: run_id, run_name, status, seed (int), timesteps (int), reward, agent, env,
    config_hash, verdict (run level), sweep_verdict (configuration level), model_version,
    classification, deployment, then `test_<aggregate>` for every `test/<aggregate>` metric
    (test_total, test_max_drawdown, test_consistency, test_sharpe_mean, ...; NaN where missing).
    """
    rows = [_run_row(r) for r in job_runs(client_for(uri), experiment, sweep_id)]
    first = ["test_total", "test_max_drawdown", "test_consistency"]
    others = sorted({k for row in rows for k in row if k.startswith("test_")} - set(first))
    frame = pd.DataFrame(rows).reindex(columns=[*_ID_COLUMNS, *_TAG_COLUMNS, *first, *others])
    for col in ("seed", "timesteps"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in [*first, *others]:
        frame[col] = frame[col].astype(float)
    return frame


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
    client = client_for(uri)
    rows: list[dict[str, Any]] = []
    for run_id in run_ids:
        report = _load_json(client, run_id, "report/report.json")
        model = report.get("model", {})
        slices = pd.DataFrame(report["slices"])
        slices = slices[slices["role"] == role]
        totals = slices.pivot_table(index=["regime", "slice"], columns="policy", values="total")
        for regime, part in totals.groupby(level="regime", sort=True):
            agent = float(part["agent"].mean()) if "agent" in part else math.nan
            bh = float(part["buy_and_hold"].mean()) if "buy_and_hold" in part else math.nan
            rows.append(
                {
                    "run_id": run_id,
                    "seed": model.get("seed"),
                    "timesteps": model.get("timesteps"),
                    "reward": model.get("reward"),
                    "regime": regime,
                    "slices": len(part),
                    "agent_total": agent,
                    "buy_and_hold_total": bh,
                    "edge": agent - bh,
                }
            )
    columns = ["run_id", "seed", "timesteps", "reward", "regime", "slices"]
    return pd.DataFrame(rows, columns=[*columns, "agent_total", "buy_and_hold_total", "edge"])


def gate_frame(uri: str, experiment: str, sweep_id: str) -> pd.DataFrame:
    """Per job run: every run gate (`gate/<name>`) and the configuration's sweep gates as Y/N.

    Columns: run_id, run_name, seed, config_hash, the run gates (Y / N, "-" when not recorded),
    verdict, the configuration-level gates from the parent's sweep/report.json (seed_stability,
    deflated_sharpe, pbo, ...; prefixed `config_` if a name clashes with a run gate; "-" before
    the sweep step has run), sweep_verdict and reason. `frame.attrs["run_gates"]` and
    `frame.attrs["config_gates"]` list the two groups of gate columns.
    """
    client = client_for(uri)
    found = job_runs(client, experiment, sweep_id)
    run_gates = sorted(
        {k.removeprefix("gate/") for r in found for k in r.data.metrics if k.startswith("gate/")}
    )
    report = _sweep_report(client, experiment, sweep_id) or {}
    by_run = {rid: c for c in report.get("configurations", []) for rid in c.get("runs", [])}
    names = sorted({g for c in report.get("configurations", []) for g in c.get("gates", {})})
    config_cols = {g: f"config_{g}" if g in run_gates else g for g in names}
    rows = []
    for r in found:
        m, t = r.data.metrics, r.data.tags
        conf = by_run.get(r.info.run_id, {})
        row: dict[str, Any] = {
            "run_id": r.info.run_id,
            "run_name": r.info.run_name,
            "seed": t.get("rlpipe.seed"),
            "config_hash": t.get("rlpipe.config_hash", ""),
        }
        row.update({g: _yn(m.get(f"gate/{g}")) for g in run_gates})
        row["verdict"] = t.get("rlpipe.verdict", "failed" if r.info.status == "FAILED" else "-")
        row.update(
            {col: _yn(conf.get("gates", {}).get(g, {}).get("passed")) for g, col in config_cols.items()}
        )
        row["sweep_verdict"] = conf.get("verdict", t.get("rlpipe.sweep_verdict", "-"))
        row["reason"] = conf.get("reason", "")
        rows.append(row)
    columns = ["run_id", "run_name", "seed", "config_hash", *run_gates, "verdict"]
    columns += [*config_cols.values(), "sweep_verdict", "reason"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    frame.attrs["run_gates"] = run_gates
    frame.attrs["config_gates"] = list(config_cols.values())
    return frame


def champion_and_challengers(
    uri: str, experiment: str, sweep_id: str, model_name: str = MODEL_NAME
) -> dict[str, Any]:
    """The sweep's decision (from its parent's sweep/report.json) next to the registry's aliases now.

    Returns {"sweep_id", "parent_run_id" (None without a parent run), "champion": {"run_id",
    "version"} or None, "challengers": [{"run_id", "version"}, ...], "promoted": bool,
    "aliases": {"champion": version or None, "challenger": version or None}, "champion_is_current":
    whether @champion still points at this sweep's champion (a later sweep or a rollback moves it)}.
    Before the sweep step has written its report, champion is None and challengers is empty.
    """
    client = client_for(uri)
    parent = _parent_run(client, experiment, sweep_id)
    report = _sweep_report(client, experiment, sweep_id) or {}
    champion: dict[str, Any] | None = report.get("champion")
    aliases = {alias: _alias_version(client, model_name, alias) for alias in ("champion", "challenger")}
    current = champion is not None and aliases["champion"] == str(champion["version"])
    return {
        "sweep_id": sweep_id,
        "parent_run_id": parent.info.run_id if parent else None,
        "champion": champion,
        "challengers": list(report.get("challengers", [])),
        "promoted": champion is not None,
        "aliases": aliases,
        "champion_is_current": current,
    }


def featured_runs(frame: pd.DataFrame, picks: dict[str, Any], n: int = 3) -> pd.DataFrame:
    """The runs worth a closer look: the champion and challengers, else the best `n` by test total.

    `frame` comes from `runs_frame`, `picks` from `champion_and_challengers`. Returns the rows of
    `frame` with a `pick` column ("champion", "challenger" or "best test total"), in that order.
    """
    chosen = [(picks["champion"]["run_id"], "champion")] if picks.get("champion") else []
    chosen += [(c["run_id"], "challenger") for c in picks.get("challengers", [])]
    if not chosen:
        done = frame[frame["status"] == "FINISHED"].sort_values("test_total", ascending=False)
        chosen = [(rid, "best test total") for rid in done["run_id"].head(n)]
    order = pd.DataFrame(chosen, columns=["run_id", "pick"])
    return order.merge(frame, on="run_id", how="left")


def curves_frame(uri: str, run_ids: Iterable[str], role: str | None = "test") -> pd.DataFrame:
    """Equity curves of `run_ids` (curves/equity.parquet) in long format, one `run_id` column added.

    Columns: run_id, slice, role, regime, policy (agent, buy_and_hold, flat, random), bar, equity;
    only slices of `role` unless it is None.
    """
    client = client_for(uri)
    parts = []
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        for i, run_id in enumerate(run_ids):
            path = client.download_artifacts(run_id, "curves/equity.parquet", f"{tmp}/{i}")
            part = pd.read_parquet(path)
            if role is not None:
                part = part[part["role"] == role]
            parts.append(part.assign(run_id=run_id))
    columns = ["run_id", "slice", "role", "regime", "policy", "bar", "equity"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _experiment_id(client: MlflowClient, experiment: str) -> str | None:
    exp = client.get_experiment_by_name(experiment)
    return str(exp.experiment_id) if exp is not None else None


def _parent_run(client: MlflowClient, experiment: str, sweep_id: str) -> Run | None:
    exp_id = _experiment_id(client, experiment)
    if exp_id is None:
        return None
    found = client.search_runs(
        [exp_id],
        filter_string=f"tags.`rlpipe.sweep_id` = '{sweep_id}' and tags.`rlpipe.kind` = 'sweep'",
        max_results=1,
    )
    return found[0] if found else None


def _sweep_report(client: MlflowClient, experiment: str, sweep_id: str) -> dict[str, Any] | None:
    """The parent's sweep/report.json, or None before the sweep step has written it."""
    parent = _parent_run(client, experiment, sweep_id)
    if parent is None or not any(
        f.path == "sweep/report.json" for f in client.list_artifacts(parent.info.run_id, "sweep")
    ):
        return None
    return _load_json(client, parent.info.run_id, "sweep/report.json")


def _load_json(client: MlflowClient, run_id: str, path: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        data: dict[str, Any] = json.loads(Path(client.download_artifacts(run_id, path, tmp)).read_text())
    return data


def _alias_version(client: MlflowClient, model_name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model_name, alias).version)
    except MlflowException:  # no such model, or no such alias
        return None


def _run_row(r: Run) -> dict[str, Any]:
    t, p, m = r.data.tags, r.data.params, r.data.metrics
    row: dict[str, Any] = {
        "run_id": r.info.run_id,
        "run_name": r.info.run_name,
        "status": r.info.status,
        "seed": t.get("rlpipe.seed", p.get("seed")),
        "timesteps": p.get("timesteps"),
        "reward": t.get("rlpipe.reward", p.get("reward.kind", "")),
        "agent": t.get("rlpipe.agent", p.get("agent._target_", "").rpartition(".")[2].lower()),
        "env": t.get("rlpipe.env", p.get("env.kind", "")),
        "config_hash": t.get("rlpipe.config_hash", ""),
        "verdict": t.get("rlpipe.verdict", "failed" if r.info.status == "FAILED" else "-"),
    }
    row.update({c: t.get(f"rlpipe.{c}", "") for c in _TAG_COLUMNS if c != "verdict"})
    row.update(
        {
            f"test_{k.removeprefix('test/')}": v
            for k, v in m.items()
            if k.startswith("test/") and k.count("/") == 1
        }
    )
    return row


def _yn(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "Y" if bool(value) else "N"
