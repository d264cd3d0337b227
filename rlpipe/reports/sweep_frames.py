"""What the comparison notebook computes from a sweep's frames (`rlpipe.tracking.notebook_reads`): the
params its runs varied, the seeds' dispersion per configuration, the out-of-sample equity of each
run with its test slices chained in time, and that equity's rolling Sharpe. Pure pandas: nothing
here reads a store or draws."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rlpipe.evaluation.backtest import AGENT
from rlpipe.evaluation.metrics import rolling_sharpe, sharpe_window

MISSING = "-"
"""The value of a param a run did not record."""
SHOWN_VALUES = 6
"""`varied_text` names at most this many values of a key, then says how many there are."""
STITCHED_COLUMNS = ["run_id", "slice", "regime", "time", "step", "equity", "ret"]


def varied(params: Iterable[Mapping[str, str]], leave_out: Sequence[str] = ()) -> dict[str, list[str]]:
    """The params whose value differs between the runs, in name order, each with its values in the
    order the runs first show them (`MISSING` for a run that did not record it).

    Args:
        params: each run's params (`notebook_reads.run_params`, `JobRow.params`).
        leave_out: keys never reported: a name ending in '.' leaves out every key under it.
    """
    runs = list(params)
    prefixes = tuple(k for k in leave_out if k.endswith("."))
    keys = sorted({k for p in runs for k in p if k not in leave_out and not k.startswith(prefixes)})
    values = {k: list(dict.fromkeys(p.get(k, MISSING) for p in runs)) for k in keys}
    return {k: v for k, v in values.items() if len(v) > 1}


def varied_text(values: Mapping[str, Sequence[str]]) -> str:
    """`varied`'s answer as a sentence: "seed (1, 2); reward.kind (pnl, pnl_fees)", a long list cut
    after `SHOWN_VALUES` values ("seed (1, 2, 3, 4, 5, 6, ... 12 values)"); "nothing" when no
    param varied."""
    parts = []
    for key, vals in values.items():
        shown = ", ".join(vals[:SHOWN_VALUES])
        parts.append(f"{key} ({shown}{f', ... {len(vals)} values' if len(vals) > SHOWN_VALUES else ''})")
    return "; ".join(parts) or "nothing"


def configuration(frame: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    """Each row's configuration as one label: its `by` values joined by " · " ("pnl · 512")."""
    return frame[list(by)].astype(str).agg(" · ".join, axis=1)


def seed_dispersion(runs: pd.DataFrame, values: Sequence[str], by: Sequence[str]) -> pd.DataFrame:
    """How far a configuration's seeds spread, over its FINISHED runs.

    Args:
        runs: `notebook_reads.runs_frame`.
        values: its columns to summarise (`validation_sharpe_mean`, `test_total`).
        by: the columns that tell configurations apart (`run_comparison.varying_axes`).

    Returns:
        One row per configuration, in the order they first appear: the `by` columns,
        `configuration` (their label), `seeds` (finished runs), then for each value `<value>_mean`,
        `<value>_std` (sample, ddof=1: NaN with one seed), `<value>_min` and `<value>_max`.
    """
    done = runs[runs["status"] == "FINISHED"]
    stats = ("mean", "std", "min", "max")
    named = {f"{v}_{s}": pd.NamedAgg(v, s) for v in values for s in stats}
    out = (
        done.groupby(list(by), sort=False, dropna=False)
        .agg(seeds=pd.NamedAgg("run_id", "size"), **named)
        .reset_index()
    )
    out.insert(len(by), "configuration", configuration(out, by) if len(out) else pd.Series(dtype=str))
    return out


def mean_spread(dispersion: pd.DataFrame, value: str, fmt: str = "{:.2f}") -> pd.Series:
    """`seed_dispersion`'s figures of `value` as text, one per configuration: "0.52 ± 0.10 (0.41 to
    0.63)" (mean ± standard deviation, then the range), "0.52 (one seed)", "n/a" without a value."""

    def text(row: pd.Series) -> str:
        mean, std, low, high = (row[f"{value}_{s}"] for s in ("mean", "std", "min", "max"))
        if not math.isfinite(mean):
            return "n/a"
        if not math.isfinite(std):
            return f"{fmt.format(mean)} (one seed)"
        return f"{fmt.format(mean)} ± {fmt.format(std).lstrip('+')} ({fmt.format(low)} to {fmt.format(high)})"

    return dispersion.apply(text, axis=1) if len(dispersion) else pd.Series(dtype=str)


def stitched_equity(curves: pd.DataFrame, policy: str = AGENT) -> pd.DataFrame:
    """Each run's test slices chained in time: the out-of-sample equity of one account that moves
    from slice to slice (walk-forward fold to fold) with what the slices before left it.

    Args:
        curves: `notebook_reads.curves_frame` (one row per run, slice, policy and bar; each slice's
            equity starts at 1 on its first bar).
        policy: whose curves to chain (the agent, or a baseline such as buy_and_hold).

    Returns:
        Columns run_id, slice, regime, time, step (0, 1, ... per run), equity (start = 1) and ret
        (the bar's return; NaN on the first row). Slices are taken in the order of their first bar's
        time (their recorded order when the run kept no times); after the first slice, a slice's
        first bar (its start, before any return) is left out, so every later row is one return.
    """
    parts = []
    for run_id, run in curves[curves["policy"] == policy].groupby("run_id", sort=False):
        starts = run.groupby("slice", sort=False)["time"].min().sort_values(kind="stable")
        pieces = []
        for i, name in enumerate(starts.index):
            s = run[run["slice"] == name].sort_values("bar")
            eq = s["equity"].to_numpy(dtype=float)
            rets = eq[1:] / eq[:-1] - 1.0
            pieces.append(
                s.assign(ret=np.concatenate([[math.nan], rets])) if i == 0 else s.iloc[1:].assign(ret=rets)
            )
        run_part = pd.concat(pieces, ignore_index=True)
        growth = np.nan_to_num(run_part["ret"].to_numpy(dtype=float)) + 1.0
        first = float(pieces[0]["equity"].iloc[0])
        parts.append(
            run_part.assign(run_id=run_id, step=np.arange(len(run_part)), equity=first * np.cumprod(growth))
        )
    if not parts:
        return pd.DataFrame(columns=STITCHED_COLUMNS)
    return pd.concat(parts, ignore_index=True).reindex(columns=STITCHED_COLUMNS)


def stitched_by_configuration(stitched: pd.DataFrame, runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """The stitched equity of each configuration: at each step, the mean of its seeds' equity (an
    account split equally between them) with the lowest and the highest seed.

    Returns:
        Columns: the `by` columns, configuration (their label), step, time, equity, low, high and
        seeds (how many runs reach that step).
    """
    keyed = stitched.merge(runs[["run_id", *by]], on="run_id", how="inner")
    out = (
        keyed.groupby([*by, "step"], sort=False, dropna=False)
        .agg(
            time=pd.NamedAgg("time", "first"),
            equity=pd.NamedAgg("equity", "mean"),
            low=pd.NamedAgg("equity", "min"),
            high=pd.NamedAgg("equity", "max"),
            seeds=pd.NamedAgg("run_id", "nunique"),
        )
        .reset_index()
    )
    out.insert(len(by), "configuration", configuration(out, by) if len(out) else pd.Series(dtype=str))
    return out


def stitched_rolling_sharpe(
    stitched: pd.DataFrame, bars_per_year: Mapping[str, float], window: int | None = None
) -> pd.DataFrame:
    """The annualised Sharpe of each run's last `window` stitched returns, at every bar from the
    window's end on (`metrics.rolling_sharpe`; a window may span two slices).

    Args:
        stitched: `stitched_equity`.
        bars_per_year: by run id (`notebook_reads.runs_frame`'s bars_per_year); NaN gives NaN.
        window: bars per window; by default `metrics.sharpe_window` of the run's stitched bars
            (seven days of bars, at most half of them).

    Returns:
        Columns run_id, time, step, sharpe and window.
    """
    parts = []
    for run_id, run in stitched.groupby("run_id", sort=False):
        per_year = float(bars_per_year.get(str(run_id), math.nan))
        bars = window or sharpe_window(len(run), per_year)
        rolled = rolling_sharpe(run["equity"].to_numpy(dtype=float), bars, per_year)
        at = run.iloc[len(run) - len(rolled) :]
        parts.append(
            pd.DataFrame({"run_id": run_id, "time": at["time"], "step": at["step"], "sharpe": rolled})
        )
        parts[-1]["window"] = bars
    if not parts:
        return pd.DataFrame(columns=["run_id", "time", "step", "sharpe", "window"])
    return pd.concat(parts, ignore_index=True)
