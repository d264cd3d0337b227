"""The replayed routine's report: the champion at each time, stitched forward, against buy-and-hold
and flat (same simulator, fills and fees), week by week."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


class RunSink(Protocol):
    """Where the report goes (a `RunLog`)."""

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None: ...
    def log_metric_series(self, points: list[tuple[str, float, int]]) -> None: ...
    def log_text(self, text: str, path: str) -> None: ...
    def log_files(self, paths: list[Path], artifact_dir: str) -> None: ...


@dataclass
class Week:
    """One step of the routine: its as-of date, the champion it traded (None: flat) and the week."""

    step: int
    asof: str
    until: str
    champion: str | None
    total: float
    """The champion's paper total after fees over the week (0: flat)."""
    hold_total: float
    equity: list[float]
    """The champion's equity at each bar of the week (from 1.0)."""
    hold: list[float]
    """Buy-and-hold's equity at the same bars."""
    paper_run: str
    health: str
    action: str = ""
    """What the health verdict did to the registry (e.g. `rolled back to v3`), if anything."""


def stitched(weeks: list[Week], field: str) -> np.ndarray:
    """Week after week, each week's curve scaled to start where the last one ended."""
    level, out = 1.0, [1.0]
    for w in weeks:
        curve = np.asarray(getattr(w, field), float)
        if len(curve):
            out.extend(level * curve[1:] / curve[0])
            level = out[-1]
    return np.asarray(out)


def routine_report(run: RunSink, weeks: list[Week], folder: Path) -> dict[str, float]:
    """Stitched curves as metrics (stepped by bar), the summary, the markdown report and the figure."""
    agent, hold = stitched(weeks, "equity"), stitched(weeks, "hold")
    run.log_metric_series([("routine/equity", float(v), i) for i, v in enumerate(agent)]
                          + [("routine/buy_and_hold", float(v), i) for i, v in enumerate(hold)])  # fmt: skip
    changes = [w.champion for i, w in enumerate(weeks) if i == 0 or w.champion != weeks[i - 1].champion]
    summary = {
        "routine/total": float(agent[-1] - 1.0),
        "routine/buy_and_hold_total": float(hold[-1] - 1.0),
        "routine/flat_total": 0.0,
        "routine/weeks": float(len(weeks)),
        "routine/weeks_with_champion": float(sum(w.champion is not None for w in weeks)),
        "routine/champion_changes": float(len(changes) - 1),
        "routine/positive_weeks": float(sum(w.total > 0 for w in weeks)),
    }
    run.log_metrics(summary)
    run.log_text(_markdown(weeks, summary), "report/routine.md")
    run.log_files([_figure(agent, hold, folder / "routine.png")], "plots")
    return summary


def _markdown(weeks: list[Week], s: dict[str, float]) -> str:
    lines = [
        "# The weekly routine, replayed",
        "",
        f"Forward total after fees: **{100 * s['routine/total']:+.2f}%** (buy-and-hold "
        f"{100 * s['routine/buy_and_hold_total']:+.2f}%, flat +0.00%) over {int(s['routine/weeks'])} weeks, "
        f"{int(s['routine/weeks_with_champion'])} with a champion, {int(s['routine/champion_changes'])} "
        "champion change(s).",
        "",
        "| step | as of | until | champion | week | week over week | buy-and-hold | health |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, w in enumerate(weeks):
        champion = f"v{w.champion}" if w.champion else "none (flat)"
        change = f"{100 * (w.total - weeks[i - 1].total):+.2f} pp" if i else "-"
        health = f"{w.health} ({w.action})" if w.action.startswith("rolled back") else (w.health or "-")
        lines.append(f"| {w.step} | {w.asof} | {w.until} | {champion} | {100 * w.total:+.2f}% | {change} | "
                     f"{100 * w.hold_total:+.2f}% | {health} |")  # fmt: skip
    lines += ["", "Champion longevity (consecutive weeks held): " + (", ".join(_longevity(weeks)) or "none")]
    rolled = [w for w in weeks if w.action.startswith("rolled back")]
    rollbacks = [f"step {w.step}: v{w.champion} {w.action}" for w in rolled]
    lines += ["", "Rollbacks: " + ("; ".join(rollbacks) if rollbacks else "none")]
    return "\n".join(lines) + "\n"


def _longevity(weeks: list[Week]) -> list[str]:
    """`v3: 2` for every run of consecutive weeks one champion held."""
    runs: list[list] = []
    previous = None
    for w in weeks:
        if w.champion is not None and w.champion == previous:
            runs[-1][1] += 1
        elif w.champion is not None:
            runs.append([w.champion, 1])
        previous = w.champion
    return [f"v{v}: {n}" for v, n in runs]


def _figure(agent: np.ndarray, hold: np.ndarray, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(agent, label="the champion at each time")
    ax.plot(hold, label="buy-and-hold")
    ax.axhline(1.0, color="grey", lw=0.8, label="flat")
    ax.set_xlabel("forward bar")
    ax.set_ylabel("equity (after fees)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
