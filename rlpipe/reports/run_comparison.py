"""A sweep's runs side by side, for the comparison notebook: the axes that tell its configurations
apart, the seeds x configurations grid, the runs worth a closer look, agent against buy-and-hold per
regime, and the drawdown of the recorded curves. Pure pandas on what `rlpipe.tracking.notebook_reads`
reads: nothing here reads a store or draws."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from rlpipe.tracking.rows import AXES

REGIME_COLUMNS = ["run_id", "seed", "timesteps", "reward", "regime", "slices", "agent_total"]
REGIME_COLUMNS += ["buy_and_hold_total", "edge"]


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """The sweep axes (timesteps, reward, agent, env) that take more than one value in `frame`.

    `config_hash` is added when those axes do not tell the configurations apart (a sweep over
    some other key, such as env.maker_fee); with a single configuration, `reward` is returned so
    that a grid still has one column.

    Args:
        frame: `notebook_reads.runs_frame`.
    """
    axes = [a for a in AXES if frame[a].nunique(dropna=False) > 1]
    combos = frame[axes].drop_duplicates().shape[0] if axes else 1
    if frame["config_hash"].nunique() > combos:
        axes.append("config_hash")
    return axes or ["reward"]


def grid(frame: pd.DataFrame, value: str = "test_total", columns: list[str] | None = None) -> pd.DataFrame:
    """Pivot `frame` (`notebook_reads.runs_frame`): one row per seed, one column per configuration.

    Columns are `columns` or else `varying_axes(frame)` (a MultiIndex when several vary). Cells
    hold `value`: the mean over repeated runs for a numeric column, the latest run's value for a
    text column such as `verdict` or `sweep_verdict`. Missing combinations are NaN.
    """
    cols = columns or varying_axes(frame)
    numeric = pd.api.types.is_numeric_dtype(frame[value])
    return frame.pivot_table(
        index="seed", columns=cols, values=value, aggfunc="mean" if numeric else "last", dropna=False
    ).sort_index()


def featured_runs(frame: pd.DataFrame, picks: dict[str, Any], n: int = 3) -> pd.DataFrame:
    """The runs worth a closer look: the champion and challengers, else the best `n` by validation
    Sharpe (never by a test result: the test slices gate, they never choose).

    `frame` comes from `notebook_reads.runs_frame`, `picks` from
    `notebook_reads.champion_and_challengers`. Returns the rows of `frame` with a `pick` column
    ("champion", "challenger" or "best validation"), in that order.
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


def regime_frame(reports: Mapping[str, Mapping[str, Any]], role: str = "test") -> pd.DataFrame:
    """Per run x regime: agent vs. buy-and-hold on `role` slices.

    Args:
        reports: each run's report/report.json by run id (`notebook_reads.run_reports`).
        role: the slices compared.

    Returns:
        Columns (`REGIME_COLUMNS`): run_id, seed, timesteps, reward, regime, slices (how many slices
        of that regime), agent_total and buy_and_hold_total (mean total after fees over those
        slices), edge (agent_total - buy_and_hold_total).
    """
    rows: list[dict[str, Any]] = []
    for run_id, report in reports.items():
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
    return pd.DataFrame(rows, columns=REGIME_COLUMNS)


def with_drawdown(curves: pd.DataFrame) -> pd.DataFrame:
    """`curves` (`notebook_reads.curves_frame`) with a `drawdown` column after `equity`: each
    curve's equity under its running peak, equity / peak - 1 (<= 0), per run, slice and policy."""
    out = curves.copy()
    equity = out["equity"].astype(float)  # an empty frame's columns are objects
    peak = equity.groupby([out["run_id"], out["slice"], out["policy"]], sort=False).cummax()
    out.insert(list(out.columns).index("equity") + 1, "drawdown", equity / peak - 1.0)
    return out
