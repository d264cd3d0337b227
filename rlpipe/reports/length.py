"""The training-length part of a run report: each checkpoint's validation score, the one kept, why."""

from __future__ import annotations

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
