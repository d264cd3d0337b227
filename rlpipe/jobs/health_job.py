"""Judge a model version's paper (or live) record against its test slices, record the verdict,
and roll a degraded champion back when the registry config says so.

The expectation is read from the version's own training run (its test slices' agent curves,
`curves/equity.parquet`, and its bars per year); the rule is `rlpipe.gates.health`. The verdict
and its figures go on the model version (tags `rlpipe.health*`) and, when a run is given (the
paper session's), on that run (tag `rlpipe.health`, metrics `health/<figure>`). A `degraded`
verdict on the version that is @champion, with `registry.on_degraded=rollback`, restores the
previous champion through `Registry.rollback`, the verdict's reasons in the history.
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np

from rlpipe.errors import MissingArtifactError, RegistryError
from rlpipe.gates.health import DEGRADED, Expectation, Health, HealthConfig, judge
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import RegistryConfig, TrackingConfig
from rlpipe.tracking.registry import CHAMPION, Registry
from rlpipe.tracking.tracker import RunLog, Tracker

log = logging.getLogger(__name__)


def expectation_of(registry: Registry, version: str) -> Expectation:
    """What the test slices of `version`'s training run lead one to expect of its record."""
    run_id = registry.run_of(version)
    curves = queries.agent_test_curves(registry.client, run_id)
    if not curves:
        raise MissingArtifactError(f"run {run_id} ({registry.name} v{version}) recorded no test slice curves")
    return Expectation.from_curves(curves, registry.run_metric(run_id, K.BARS_PER_YEAR))  # `record_data`'s


def judge_version(
    tracking: TrackingConfig,
    registry: RegistryConfig,
    version: str,
    realised_equity: np.ndarray,
    cfg: HealthConfig,
    run: RunLog | None,
    seed: int = 0,
) -> Health:
    """Judge version `version` of `tracking.registered_model` on its realised equity curve (from the
    start of its session, one value per bar), record the verdict, and act on `registry.on_degraded`.

    Args:
        tracking: the store and registered model.
        registry: `on_degraded` (flag or rollback).
        version: the model version the record was traded with.
        realised_equity: the record's equity, first value at the session start (any positive scale).
        cfg: the health rule's thresholds.
        run: the paper session's run, or None; it gets tag `rlpipe.health` and metrics `health/<figure>`.
        seed: the bootstrap's seed (the same record and seed give the same figures).
    """
    reg = Registry(Tracker.of(tracking).client, tracking.registered_model)
    health = judge(expectation_of(reg, version), realised_equity, cfg, seed)
    action = _act(reg, registry, version, health)
    figures = {k: (v if math.isfinite(v) else None) for k, v in health.figures.items()}
    reg.tag_version(
        version,
        {
            T.HEALTH: health.verdict,
            T.HEALTH_REASON: health.reason,
            T.HEALTH_FIGURES: json.dumps(figures, sort_keys=True),
            T.HEALTH_RUN: run.run_id if run is not None else "none",
            T.HEALTH_ACTION: action,
        },
    )
    if run is not None:
        run.log_metrics({f"health/{k}": v for k, v in health.figures.items()}, step=health.bars)
        run.set_tags({T.HEALTH: health.verdict, T.HEALTH_REASON: health.reason, T.HEALTH_ACTION: action})
    log.info("health: %s v%s %s after %d bars (%s)", reg.name, version, health.verdict, health.bars, action)
    return health


def _act(reg: Registry, registry: RegistryConfig, version: str, health: Health) -> str:
    """Roll a degraded champion back when `registry.on_degraded` is rollback; what was done, in words."""
    if health.verdict != DEGRADED:
        return "recorded"
    if registry.on_degraded != "rollback":
        return "recorded (registry.on_degraded=flag)"
    if reg.alias_version(CHAMPION) != version:
        return f"recorded; v{version} is not @champion, nothing to roll back"
    why = f"health degraded after {health.bars} bars: {health.reason}"
    try:
        restored, _ = reg.rollback(why, only=version)
    except RegistryError as exc:  # the first champion, or a sweep crowned another meanwhile
        log.warning("health: %s v%s degraded, not rolled back: %s", reg.name, version, exc)
        return f"recorded; rollback refused: {exc}"
    log.warning("health: %s v%s degraded: @champion rolled back to v%s", reg.name, version, restored)
    return f"rolled back to v{restored}"
