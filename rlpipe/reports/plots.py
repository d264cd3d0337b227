"""Equity and drawdown plots per slice (agent and baselines on the same axes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.evaluation.metrics import drawdown_curve
from rlpipe.tracking.rows import JobRow

COLORS = {AGENT: "C0", "buy_and_hold": "C1", "flat": "C7", "random": "C2"}


def slice_plots(results: Sequence[SliceResult], outdir: Path) -> list[Path]:
    """One PNG per slice: equity (top) and drawdown (bottom) of the agent and the baselines.

    One figure is drawn once and its lines are updated per slice: building and laying out a
    figure per slice cost more than the whole backtest.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    policies = list(dict.fromkeys(r.policy for r in results))
    by_key = {(r.slice, r.policy): r for r in results}
    fig, (ax_eq, ax_dd) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=(2, 1))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.93, bottom=0.1, hspace=0.08)
    lines = {}
    for p in policies:
        color = COLORS.get(p, "C4")
        style = {"lw": 1.6, "color": color} if p == AGENT else {"lw": 0.9, "alpha": 0.8, "color": color}
        lines[p] = (ax_eq.plot([], [], label=p, **style)[0], ax_dd.plot([], [], **style)[0])
    ax_eq.set_ylabel("equity (start = 1)")
    ax_eq.legend(loc="upper left", fontsize=8)
    ax_dd.set_ylabel("drawdown %")
    ax_dd.set_xlabel("bars")
    paths = []
    try:
        for name in dict.fromkeys(r.slice for r in results):
            first = None
            for p, (eq_line, dd_line) in lines.items():
                r = by_key.get((name, p))
                x = range(len(r.equity)) if r is not None else []
                eq_line.set_data(x, r.equity if r is not None else [])
                dd_line.set_data(x, 100 * drawdown_curve(r.equity) if r is not None else [])
                first = first or r
            assert first is not None
            for ax in (ax_eq, ax_dd):
                ax.relim()
                ax.autoscale_view()
            ax_eq.set_title(f"{name} ({first.role}, {first.regime})")
            path = outdir / f"{first.role}_{name}.png"
            fig.savefig(path, dpi=72)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def sweep_plot(
    rows: Sequence[JobRow], verdicts: dict[str, str], champion_run: str | None, path: Path
) -> Path:
    """Test total vs worst test drawdown for every run of a sweep, coloured by the sweep verdict."""
    colors = {"promote": "C2", "retest": "C1", "reject": "C3"}
    fig, ax = plt.subplots(figsize=(8, 5))

    def xy(r: JobRow) -> tuple[float, float]:
        return 100 * r.test_metric("max_drawdown"), 100 * r.test_metric("total")

    try:
        for verdict, color in colors.items():
            pts = [xy(r) for r in rows if verdicts.get(r.run_id) == verdict]
            ax.scatter(
                [p[0] for p in pts], [p[1] for p in pts], c=color, label=f"{verdict} ({len(pts)})", alpha=0.8
            )
        for r in rows:
            if r.run_id == champion_run:
                ax.scatter(*xy(r), s=250, facecolors="none", edgecolors="k", label="champion")
        several = len({r.config_hash for r in rows}) > 1
        for r in rows:
            if r.run_id in verdicts:
                label = f"{r.config_hash[:6]} s{r.seed}" if several else f"seed {r.seed}"
                ax.annotate(label, xy(r), fontsize=7, xytext=(4, 4), textcoords="offset points")
        ax.margins(0.15)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("worst test-slice max drawdown %")
        ax.set_ylabel("test total after fees %")
        title = "sweep: runs by configuration verdict"
        ax.set_title(f"{title} (labels: configuration hash, seed)" if several else title)
        ax.legend(fontsize=8)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path
