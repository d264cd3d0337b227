"""Models across weeks, seen from one sweep: how its continued members compare with their parents
(on the parents' validation slices, the forgetting guard's numbers) and how long the champion has
held its alias. Logged on the sweep's parent run and written into its report."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from rlpipe.reports.format import num
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import CHAMPION, Registry
from rlpipe.tracking.rows import JobRow
from rlpipe.tracking.tracker import Tracker

STAMP = "%Y-%m-%dT%H-%M-%S.%fZ"
"""The registry's transition-tag timestamps (`Registry.transition`)."""


@dataclass(frozen=True)
class Generations:
    """What the sweep's parent run logs (metrics, a series by generation) and its report section."""

    metrics: dict[str, float]
    series: list[tuple[str, float, int]]
    lines: list[str]


def generations(tracker: Tracker, registry: Registry, rows: Sequence[JobRow], before: str | None,
                sweep_id: str, metric: str) -> Generations:  # fmt: skip
    """Improvement across generations and champion longevity after the sweep step moved the registry.

    Args:
        before: the @champion version before the sweep step (None: there was none).
    """
    done = [r for r in rows if r.finished]
    continued = [r for r in done if r.parent_run and math.isfinite(r.family_change)]
    change = [r.family_change for r in continued]
    metrics = {
        "lineage/continued_runs": float(len(continued)),
        "lineage/improved_fraction": float(np.mean([c > 0 for c in change])) if change else math.nan,
        "lineage/improvement_mean": float(np.mean(change)) if change else math.nan,
    }
    best: dict[int, float] = {}
    for r in done:
        score = r.validation.get(metric, math.nan)
        if math.isfinite(score):
            best[r.generation] = max(best.get(r.generation, -math.inf), score)
    series = [("lineage/best_validation", v, g) for g, v in sorted(best.items())]
    lines = ["", "## Generations", ""]
    lines += _champion(tracker, registry, before, sweep_id, metrics)
    lines += ["", f"Best validation {metric} by generation: "
              + (", ".join(f"g{g} {num(v)}" for g, v in sorted(best.items())) or "none"), ""]  # fmt: skip
    if continued:
        lines += [
            f"Continued members: {len(continued)}; better than their parent on the parent's validation "
            f"slices: {sum(c > 0 for c in change)}/{len(change)} "
            f"(mean change {num(metrics['lineage/improvement_mean'])}).",
            "",
            "| run | generation | parent version | parent | child | change |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [f"| {r.run_name} | {r.generation} | {r.parent_version} | {num(r.family_parent)} "
                  f"| {num(r.family_child)} | {num(r.family_change)} |" for r in continued]  # fmt: skip
    return Generations(metrics, series, [*lines, ""])


def _champion(tracker: Tracker, registry: Registry, before: str | None, sweep_id: str,
              metrics: dict[str, float]) -> list[str]:  # fmt: skip
    """Champion longevity: its generation, age since crowned, sweeps it has held the alias through."""
    now = registry.alias_version(CHAMPION)
    parent = tracker.ensure_parent_run(sweep_id)
    tracker.handle(parent).set_tags({T.REGISTRY_CHAMPION: now or "none"})
    if now is None:
        return ["Champion: none yet."]
    held = tracker.search(f"tags.`{T.KIND}` = '{T.SWEEP}' and tags.`{T.REGISTRY_CHAMPION}` = '{now}'")
    version = registry.version(now)
    crowned = [
        k for k, text in version.tags.items() if k.startswith(T.TRANSITION_PREFIX) and f"@{CHAMPION}" in text
    ]
    since = (
        datetime.strptime(max(crowned).removeprefix(T.TRANSITION_PREFIX), STAMP).replace(tzinfo=UTC)
        if crowned
        else None
    )
    age = (datetime.now(UTC) - since).total_seconds() / 86400 if since else math.nan
    generation = int(version.tags.get(T.GENERATION, "0") or 0)
    metrics.update({
        "champion/version": float(now), "champion/generation": float(generation),
        "champion/age_days": age, "champion/sweeps_held": float(len(held)),
        "champion/changed": float(now != before),
    })  # fmt: skip
    changed = f"new this sweep (was {'v' + before if before else 'none'})" if now != before else "unchanged"
    return [
        f"Champion: v{now} (generation {generation}), {changed}; crowned {since:%Y-%m-%d %H:%M} UTC "
        f"({age:.1f} days ago), champion after {len(held)} sweep(s)."
        if since
        else f"Champion: v{now}."
    ]
