"""Equity and drawdown plots per slice (agent and baselines on the same axes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.evaluation.metrics import drawdown_curve


def slice_plots(results: Sequence[SliceResult], outdir: Path) -> list[Path]:
    """One PNG per slice: equity (top) and drawdown (bottom) of the agent and the baselines."""
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in dict.fromkeys(r.slice for r in results):
        rows = [r for r in results if r.slice == name]
        fig, (ax_eq, ax_dd) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=(2, 1))
        for r in rows:
            style = {"lw": 1.6, "color": "C0"} if r.policy == AGENT else {"lw": 0.9, "alpha": 0.7}
            ax_eq.plot(r.equity, label=r.policy, **style)
            ax_dd.plot(100 * drawdown_curve(r.equity), **style)
        ax_eq.set_title(f"{name} ({rows[0].role}, {rows[0].regime})")
        ax_eq.set_ylabel("equity (start = 1)")
        ax_eq.legend(loc="upper left", fontsize=8)
        ax_dd.set_ylabel("drawdown %")
        ax_dd.set_xlabel("bars")
        fig.tight_layout()
        path = outdir / f"{rows[0].role}_{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths
