"""A configuration's seeds taken together, and the configurations of a sweep side by side: the
per-bar mean of the seeds' returns, the chance spread of a Sharpe estimate, the PBO gate."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from rlpipe.gates.rules import GateResult, GatesConfig, gate
from rlpipe.gates.statistics import PBOResult, pbo_cscv
from rlpipe.types import FloatArray


def seed_mean(series: Sequence[FloatArray]) -> FloatArray:
    """A configuration's test returns: per bar, the mean across its seeds (cut to the shortest)."""
    series = [s for s in series if len(s)]
    if not series:
        return np.array([], dtype=float)
    n = min(len(s) for s in series)
    return np.asarray(np.mean([s[:n] for s in series], axis=0), dtype=float)


def null_sharpe_variance(series: Iterable[FloatArray]) -> float:
    """Sampling variance of a per-period Sharpe estimate near zero, 1 / T (T: mean series length):
    how much no-skill trials' Sharpe ratios differ by chance alone."""
    lengths = [len(s) for s in series if len(s)]
    return 1.0 / float(np.mean(lengths)) if lengths else 0.0


def pbo_gate_of(columns: Sequence[FloatArray], cfg: GatesConfig) -> tuple[GateResult, PBOResult | None]:
    """The sweep's PBO (CSCV over the configurations' pooled test returns, `columns`) as a soft gate;
    not applicable to one configuration."""
    if len(columns) < 2:
        rule = "not applicable: one configuration, so no selection between configurations to overfit"
        return GateResult("pbo", True, math.nan, cfg.max_pbo, rule, hard=False, judged=False), None
    n = min(len(c) for c in columns)
    try:
        result = pbo_cscv(np.column_stack([c[:n] for c in columns]), cfg.pbo_splits)
    except ValueError as exc:
        why = f"cannot be computed: {exc}"
        return GateResult("pbo", False, math.nan, cfg.max_pbo, why, hard=False, judged=False), None
    rule = (
        f"probability of backtest overfitting (CSCV, {cfg.pbo_splits} blocks) <= {cfg.max_pbo}; "
        "judges the choice between configurations, rejects none"
    )
    return gate("pbo", result.pbo, cfg.max_pbo, result.pbo <= cfg.max_pbo, rule, hard=False), result
