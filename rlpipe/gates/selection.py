"""Training length as a hyperparameter: which of a run's checkpoints is kept, by validation only.

The rule (`select_length`): among the checkpoints with a finite validation score, find the best
score; keep the earliest checkpoint whose score is at least best - tolerance * |best|. Longer
training that is not clearly better is not kept: it has had more chances to learn the quirks of
the training window. Without validation scores nothing can be selected and the last checkpoint
is kept (the run says so). The test slices play no part: only the kept checkpoint is tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlpipe.types import JsonDict


@dataclass(frozen=True)
class LengthPoint:
    """One checkpoint: its nominal length, the steps actually trained, its validation score."""

    timesteps: int
    trained_steps: int
    score: float


@dataclass(frozen=True)
class LengthChoice:
    """The checkpoints, the one kept, and why."""

    points: tuple[LengthPoint, ...]
    selected: LengthPoint
    metric: str
    reason: str

    @property
    def candidates(self) -> int:
        """How many lengths the run chose among (trials for the deflated Sharpe ratio)."""
        return len(self.points)

    def as_dict(self) -> JsonDict:
        return {
            "metric": self.metric,
            "selected_timesteps": self.selected.timesteps,
            "reason": self.reason,
            "points": [
                {"timesteps": p.timesteps, "trained_steps": p.trained_steps, "score": p.score}
                for p in self.points
            ],
        }


def select_length(points: Sequence[LengthPoint], tolerance: float, metric: str) -> LengthChoice:
    """Keep the earliest checkpoint within `tolerance` of the best validation score (see module)."""
    if not points:
        raise ValueError("select_length needs at least one checkpoint")
    ordered = tuple(sorted(points, key=lambda p: p.timesteps))
    scored = [p for p in ordered if math.isfinite(p.score)]
    if not scored:
        last = ordered[-1]
        why = f"no validation/{metric} to select by (declare validation slices): kept the last"
        return LengthChoice(ordered, last, metric, why)
    best = max(scored, key=lambda p: p.score)
    floor = best.score - tolerance * abs(best.score)
    kept = next(p for p in scored if p.score >= floor)
    why = (
        f"earliest of {len(ordered)} checkpoint(s) with validation {metric} >= {floor:.3f} "
        f"(best {best.score:.3f} at {best.timesteps} steps, tolerance {tolerance:.0%})"
    )
    return LengthChoice(ordered, kept, metric, why)
