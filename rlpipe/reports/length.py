"""The training-length part of a run report: each checkpoint's validation score, the one kept, why."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from rlpipe.gates.selection import LengthChoice
from rlpipe.reports.format import num


def length_section(choice: LengthChoice) -> list[str]:
    """Markdown: the validation curve over the checkpoints, the selected length and the rule."""
    lines = ["", "## Training length", "", f"| timesteps | trained steps | validation {choice.metric} | |"]
    lines.append("|---:|---:|---:|---|")
    for p in choice.points:
        mark = "**kept**" if p == choice.selected else ""
        lines.append(f"| {p.timesteps} | {p.trained_steps} | {num(p.score)} | {mark} |")
    kept = choice.selected.timesteps
    lines += ["", f"Kept {kept} steps: {choice.reason}. Only the kept policy is tested.", ""]
    return lines


def length_plot(choice: LengthChoice, path: Path) -> Path:
    """The validation score against the training length, the kept checkpoint marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p.timesteps for p in choice.points]
    ax.plot(xs, [p.score for p in choice.points], marker="o", color="tab:blue", label="checkpoint")
    ax.scatter([choice.selected.timesteps], [choice.selected.score], s=120, facecolors="none",
               edgecolors="tab:red", linewidths=2, label="kept", zorder=3)  # fmt: skip
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"validation {choice.metric}")
    ax.set_title("Training length chosen on validation")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
