"""The replayed routine's report: the champion at each time, stitched forward, against buy-and-hold
and flat (same simulator, fills and fees), week by week."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

PARTS = ("training", "scoring", "paper", "registry", "other")
"""The parts of a routine step's wall time, in the report's order (`rlpipe.jobs.routine_times`)."""
TIME_NOTE = (
    "training: learning, from the job runs' records; scoring: checkpoints scored on validation, data, test "
    "backtests, gates, reports, registration; paper: the champion's week and its parent's; registry: the "
    "sweep step and the routine's registry reads; other: process start, imports, Hydra, the launcher, "
    "buy-and-hold, the ledger. Job-seconds of jobs run side by side are divided by the jobs open at once."
)


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
    role: str = ""
    """The champion's weekly role, from its run (`explorer-0`, `refiner-1`, `champion-0`), if any."""
    parent: str | None = None
    """The champion's parent version when it is a continuation (None: trained from scratch, or flat)."""
    parent_total: float | None = None
    """The parent's paper total after fees on the same week (same bars, fills and fees); None: not
    traded (no parent, or a ledger from before parents were traded)."""
    parent_run: str = ""
    """The parent's paper session."""
    times: dict[str, float] = field(default_factory=dict)
    """The step's wall time by part (`rlpipe.jobs.routine_times.split`); empty in a ledger written
    before steps were timed."""

    @property
    def child_minus_parent(self) -> float | None:
        """The champion's week total minus its parent's on the same week, when both traded it."""
        return None if self.parent_total is None else self.total - self.parent_total

    @property
    def role_label(self) -> str:
        """What the champion was in its sweep: explorer, refiner, champion continuation, ..."""
        kind = self.role.split("-")[0]
        if self.champion is None:
            return "-"
        if self.parent is None:
            return {"": "from scratch", "explorer": "explorer"}.get(kind, f"explorer ({kind} slot)")
        return {"champion": "champion continuation", "refiner": "refiner"}.get(kind, "continuation")


def stitched(weeks: list[Week], field: str) -> np.ndarray:
    """Week after week, each week's curve scaled to start where the last one ended."""
    level, out = 1.0, [1.0]
    for w in weeks:
        curve = np.asarray(getattr(w, field), float)
        if len(curve):
            out.extend(level * curve[1:] / curve[0])
            level = out[-1]
    return np.asarray(out)


def step_metrics(w: Week) -> dict[str, float]:
    """What the routine's parent run logs at step `w.step`: the week, its parent's, the time split."""
    out = {"routine/week_total": w.total, "routine/week_buy_and_hold": w.hold_total}
    if w.parent_total is not None:
        out |= {
            "routine/week_parent_total": w.parent_total,
            "routine/child_minus_parent": w.total - w.parent_total,
        }
    return out | {f"routine/step_time/{p}_s": w.times[p] for p in ("wall", *PARTS) if p in w.times}


def routine_report(run: RunSink, weeks: list[Week], folder: Path) -> dict[str, float]:
    """Stitched curves as metrics (stepped by bar), the summary, the markdown report and the figure."""
    agent, hold = stitched(weeks, "equity"), stitched(weeks, "hold")
    run.log_metric_series([("routine/equity", float(v), i) for i, v in enumerate(agent)]
                          + [("routine/buy_and_hold", float(v), i) for i, v in enumerate(hold)])  # fmt: skip
    changes = [w.champion for i, w in enumerate(weeks) if i == 0 or w.champion != weeks[i - 1].champion]
    diffs = [d for w in weeks if (d := w.child_minus_parent) is not None]
    summary = {
        "routine/total": float(agent[-1] - 1.0),
        "routine/buy_and_hold_total": float(hold[-1] - 1.0),
        "routine/flat_total": 0.0,
        "routine/weeks": float(len(weeks)),
        "routine/weeks_with_champion": float(sum(w.champion is not None for w in weeks)),
        "routine/champion_changes": float(len(changes) - 1),
        "routine/positive_weeks": float(sum(w.total > 0 for w in weeks)),
        "routine/child_vs_parent_weeks": float(len(diffs)),
        "routine/children_beat_parents": float(sum(d > 0 for d in diffs)),
        "routine/child_minus_parent_mean": float(np.mean(diffs)) if diffs else math.nan,
    }
    timed = [w.times for w in weeks if w.times]
    summary |= {f"routine/time/{p}_s": float(sum(t[p] for t in timed)) for p in ("wall", *PARTS) if timed}
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
        "| step | as of | until | champion | week | week over week | buy-and-hold | health | role | parent "
        "| child - parent |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, w in enumerate(weeks):
        champion = f"v{w.champion}" if w.champion else "none (flat)"
        change = f"{100 * (w.total - weeks[i - 1].total):+.2f} pp" if i else "-"
        health = f"{w.health} ({w.action})" if w.action.startswith("rolled back") else (w.health or "-")
        lines.append(f"| {w.step} | {w.asof} | {w.until} | {champion} | {100 * w.total:+.2f}% | {change} | "
                     f"{100 * w.hold_total:+.2f}% | {health} | {w.role_label} | {_parent(w)} |")  # fmt: skip
    lines += ["", "Champion longevity (consecutive weeks held): " + (", ".join(_longevity(weeks)) or "none")]
    rolled = [w for w in weeks if w.action.startswith("rolled back")]
    rollbacks = [f"step {w.step}: v{w.champion} {w.action}" for w in rolled]
    lines += ["", "Rollbacks: " + ("; ".join(rollbacks) if rollbacks else "none")]
    return "\n".join(lines + _generations(weeks, s) + _times(weeks)) + "\n"


def _parent(w: Week) -> str:
    """The parent column and the child-minus-parent column of a week's row."""
    if w.parent is None:
        return "- | -"
    if w.parent_total is None:
        return f"v{w.parent} (not traded) | -"
    return f"v{w.parent} {100 * w.parent_total:+.2f}% | {100 * (w.total - w.parent_total):+.2f} pp"


def _generations(weeks: list[Week], s: dict[str, float]) -> list[str]:
    n, won = int(s["routine/child_vs_parent_weeks"]), int(s["routine/children_beat_parents"])
    mean = s["routine/child_minus_parent_mean"]
    said = (
        f"children beat their parents {won} of {n} (mean child - parent {100 * mean:+.2f} pp)"
        if n
        else "no week's champion was a continuation"
    )
    return ["", "## Generation over generation", "",
            "A champion that continues a parent version is compared with that parent, paper traded on the "
            f"same forward week (same bars, fills and fees): {said}."]  # fmt: skip


def _times(weeks: list[Week]) -> list[str]:
    columns = ("wall", *PARTS)
    header = "| step | " + " | ".join(columns) + " | jobs at once |"
    lines = ["", "## Where each step's time went (seconds of wall time)", "", header, "|---" * 8 + "|"]
    for w in weeks:
        t = w.times
        cells = [f"{t[p]:.1f}" for p in columns] + [f"{t['jobs_at_once']:.2f}"] if t else ["-"] * 7
        lines.append(f"| {w.step} | " + " | ".join(cells) + " |")
    timed = [w.times for w in weeks if w.times]
    if timed:
        lines.append("| all | " + " | ".join(f"{sum(t[p] for t in timed):.1f}" for p in columns) + " | |")
    lines += ["", TIME_NOTE]
    if len(timed) < len(weeks):
        lines += [
            "",
            "Steps without times were recorded by an older rlpipe (no time split, no parent traded).",
        ]
    return lines


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
