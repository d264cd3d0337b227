"""A run's tear sheets drawn from what the run recorded, after it has closed.

A job records its backtest as data (`report/report.json`: every slice and policy with its metrics;
`curves/equity.parquet`: the curves bar by bar; the metric `data/bars_per_year`). The PNGs are drawn
from those records, not from the job's memory, so that drawing them (~0.3 s a slice) stays off the
job's critical path (`rlpipe.jobs.tear_sheet_job`) and any run can be drawn again on demand
(`python -m rlpipe.runs plots run_id=...`). The pictures are the ones a job drew inline before:
the same `SliceFigure` over the same curves and metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlpipe.evaluation.backtest import SliceResult
from rlpipe.gates.selection import LengthChoice, LengthPoint
from rlpipe.reports.plots import length_plot, slice_plots

LENGTH_PLOT = "training_length.png"


def _number(x: Any) -> float:
    """A metric as JSON holds it: non-finite values were written as null."""
    return math.nan if x is None else float(x)


def slice_results(
    curves: pd.DataFrame, slices: Sequence[Mapping[str, Any]], bars_per_year: float
) -> list[SliceResult]:
    """The `SliceResult` of every (slice, policy) of `report.json`'s `slices`, with its curves from
    `curves` (the long frame of `evaluation.backtest.curves_frame`), in the order the run recorded."""
    parts = {key: g.sort_values("bar") for key, g in curves.groupby(["slice", "policy"], sort=False)}
    results = []
    for s in slices:
        g = parts.get((s["slice"], s["policy"]))
        if g is None:
            raise ValueError(
                f"curves/equity.parquet has no curve for slice {s['slice']!r}, policy {s['policy']!r}"
            )
        time = pd.DatetimeIndex(g["time"])
        described = {"slice", "role", "regime", "policy", "start", "end"}
        results.append(
            SliceResult(
                slice=s["slice"], role=s["role"], regime=s["regime"], policy=s["policy"],
                metrics={k: _number(v) for k, v in s.items() if k not in described},
                equity=g["equity"].to_numpy(dtype=float), start=s.get("start", ""), end=s.get("end", ""),
                time=None if time.isna().all() else time,
                fees=_curve(g["fees"]), turnover=_curve(g["turnover"]), bars_per_year=bars_per_year,
            )
        )  # fmt: skip
    return results


def _curve(column: pd.Series) -> np.ndarray:
    """A cumulative curve, or none when the run recorded it as missing (NaN)."""
    values = column.to_numpy(dtype=float)
    return np.zeros(0) if np.isnan(values).all() else values


def length_choice(report: Mapping[str, Any]) -> LengthChoice | None:
    """The training-length choice of `report.json`, or None for a run that scored no checkpoints."""
    length = report.get("training_length")
    if not length:
        return None
    points = tuple(
        LengthPoint(p["timesteps"], p["trained_steps"], _number(p["score"])) for p in length["points"]
    )
    selected = next(p for p in points if p.timesteps == length["selected_timesteps"])
    return LengthChoice(points, selected, length["metric"], length["reason"])


def draw(curves: pd.DataFrame, report: Mapping[str, Any], bars_per_year: float, outdir: Path) -> list[Path]:
    """Every tear sheet of a run into `outdir`: one `<role>_<slice>.png` per slice, and
    `training_length.png` for a run that chose its length among checkpoints."""
    files = slice_plots(slice_results(curves, report["slices"], bars_per_year), outdir)
    choice = length_choice(report)
    if choice is not None:
        files.append(length_plot(choice, outdir / LENGTH_PLOT))
    return files
