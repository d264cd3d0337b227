"""Per-run gates and the run verdict.

Every gate compares one metric with one threshold from `conf/gates/`; a missing or NaN metric
fails its gate. A run that passes its gates is not yet "promote": seed stability is a property of
a configuration across seeds, so until the sweep-level step has judged it the verdict is "retest".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rlpipe.types import Metrics

PROMOTE, REJECT, RETEST = "promote", "reject", "retest"


@dataclass
class GatesConfig:
    """Gate thresholds (config group `gates`)."""

    min_positive_fraction: float = 0.5
    """pass_majority_slices: fraction of test slices positive after fees must exceed this."""
    max_drawdown_cap: float = 0.15
    """drawdown_under_cap: max drawdown on every test slice must stay at or under this."""
    max_best_slice_share: float = 0.6
    """no_single_slice_dependency: the best test slice may carry at most this share of the total."""


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: the value it judged and the threshold it used."""

    name: str
    passed: bool
    value: float
    threshold: float
    rule: str


def _gate(name: str, value: float | None, threshold: float, ok: bool, rule: str) -> GateResult:
    v = math.nan if value is None else float(value)
    return GateResult(name, bool(ok) and not math.isnan(v), v, threshold, rule)


def run_gates(test: Metrics, cfg: GatesConfig) -> list[GateResult]:
    """Apply the per-run gates to the test aggregates (see `evaluation.backtest.aggregates`)."""
    pos, dd, share = test.get("consistency"), test.get("max_drawdown"), test.get("best_slice_share")
    nan = math.nan
    return [
        _gate(
            "pass_majority_slices",
            pos,
            cfg.min_positive_fraction,
            (pos if pos is not None else nan) > cfg.min_positive_fraction,
            f"fraction of test slices positive after fees > {cfg.min_positive_fraction}",
        ),
        _gate(
            "drawdown_under_cap",
            dd,
            cfg.max_drawdown_cap,
            (dd if dd is not None else nan) <= cfg.max_drawdown_cap,
            f"max drawdown on every test slice <= {cfg.max_drawdown_cap}",
        ),
        _gate(
            "no_single_slice_dependency",
            share,
            cfg.max_best_slice_share,
            (share if share is not None else nan) <= cfg.max_best_slice_share,
            f"best test slice carries <= {cfg.max_best_slice_share} of the net total (net total > 0)",
        ),
    ]


def run_verdict(gates: list[GateResult]) -> tuple[str, str]:
    """(verdict, reason) of one run from its gates."""
    failed = [g.name for g in gates if not g.passed]
    if failed:
        return REJECT, "failed: " + ", ".join(failed)
    return RETEST, "run gates passed; seed_stability is judged across seeds by the sweep-level step"
