"""Per-run gates, fitness, classification, deployment decision and the run verdict.

Every gate compares one metric with one threshold from `conf/gates/`; a missing or NaN metric
fails its gate. The run verdict is one of three:

- "reject" (`REJECT`): a hard gate failed;
- "retest" (`RETEST`): every hard gate passed but the soft gate `regime_coverage` failed, so the
  test set, missing a regime the data offers, cannot say enough;
- "pass" (`PASS`): every gate passed.

A run passes its run gates when its verdict is "pass" or "retest" (`passed_run_gates`). Neither is
"promote": seed stability, the deflated Sharpe ratio and the probability of backtest overfitting
are properties of a configuration across seeds and trials, so only the sweep-level step
(`rlpipe.gates.sweep_gates`), whose verdicts are "promote", "retest", "reject" and "unpicked" (a
searched configuration other than the search's pick), can promote.

Fitness, a score in [0, 1], is the mean of four sub-scores, each clipped to [0, 1]:
consistency (the positive-fold fraction), Sharpe (mean fold Sharpe / `fitness_sharpe_full`),
profit factor ((PF - 1) / (`fitness_pf_full` - 1)) and drawdown (1 - max drawdown /
`fitness_drawdown_zero`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rlpipe.types import Metrics

PROMOTE, REJECT, RETEST = "promote", "reject", "retest"
UNPICKED = "unpicked"
"""A sweep verdict: a searched configuration other than the search's pick (`rlpipe.gates.sweep_gates`)."""
PASS = "pass"
APPROVED, REVIEW, DROP = "APPROVED", "REVIEW", "DROP"
LIVE, PAPER, RETRAIN, DROP_MODEL = "live", "paper", "retrain", "drop"


@dataclass
class GatesConfig:
    """Gate thresholds and decision rules (config group `gates`)."""

    min_positive_fraction: float = 0.5
    """pass_majority_slices: fraction of test slices positive after fees must exceed this."""
    max_drawdown_cap: float = 0.15
    """drawdown_under_cap: max drawdown on every test slice must stay at or under this."""
    max_best_slice_share: float = 0.6
    """no_single_slice_dependency: the best test slice may carry at most this share of the total."""
    min_beats_buy_and_hold: float = 0.5
    """beats_buy_and_hold: fraction of test slices beating buy-and-hold after fees must exceed this."""
    require_regime_coverage: bool = True
    """regime_coverage: the test slices must cover every regime the data offers (else retest)."""
    fitness_sharpe_full: float = 2.0
    """Fitness: mean fold Sharpe that earns the full Sharpe sub-score."""
    fitness_pf_full: float = 2.0
    """Fitness: profit factor that earns the full profit-factor sub-score."""
    fitness_drawdown_zero: float = 0.2
    """Fitness: max drawdown at which the drawdown sub-score reaches zero."""
    approved: list[float] = field(default_factory=lambda: [0.70, 1.8, 0.85, 0.08])
    """APPROVED when fitness >=, profit factor >=, consistency >=, max drawdown <= these four."""
    review: list[float] = field(default_factory=lambda: [0.50, 1.3, 0.65, 0.15])
    """REVIEW when fitness >=, profit factor >=, consistency >=, max drawdown <= these (else DROP)."""
    live: list[float] = field(default_factory=lambda: [0.8, 1.5])
    """Deploy live: positive-fold fraction >= first and fold Sharpe dispersion < second."""
    paper: list[float] = field(default_factory=lambda: [0.6, 2.5])
    """Paper-trade: positive-fold fraction >= first and fold Sharpe dispersion < second."""
    drop_max_positive: float = 0.2
    """Drop the model when the positive-fold fraction is at or below this (losses on nearly all folds)."""
    promote_classes: list[str] = field(default_factory=lambda: [APPROVED, REVIEW])
    """Classifications that may be promoted."""
    promote_deployments: list[str] = field(default_factory=lambda: [LIVE, PAPER])
    """Deployment decisions that may be promoted."""
    min_seed_pass_fraction: float = 0.6
    """seed_stability: fraction of a configuration's seeds that must pass their run gates."""
    max_seed_sharpe_std: float = 1.0
    """seed_stability: largest allowed std of the seeds' mean test Sharpe."""
    min_deflated_sharpe: float = 0.95
    """deflated_sharpe: the configuration's DSR given the sweep's trials must reach this."""
    max_pbo: float = 0.5
    """pbo: above this, choosing between the sweep's configurations is not evidence (reported
    with the champion; it rejects no configuration, each stands on its own gates)."""
    pbo_splits: int = 10
    """pbo: number of time blocks for combinatorially symmetric cross-validation (even)."""
    select_metric: str = "sharpe_mean"
    """The validation aggregate (`validation/<select_metric>`) that ranks seeds and configurations
    for champion and challengers; test results gate, they never rank."""
    forgetting_tolerance: float = 0.1
    """Forgetting guard: a continued model whose validation score falls more than this fraction of
    |its parent's| below its parent's (on the same slices) is never staged or crowned."""
    checkpoint_tolerance: float = 0.05
    """Training length: of a run's checkpoints the earliest whose validation score is within this
    fraction of the best one's |score| is kept (`rlpipe.gates.selection`)."""


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: the value it judged and the threshold it used."""

    name: str
    passed: bool
    value: float
    threshold: float
    rule: str
    hard: bool = True
    judged: bool = True
    """False when the gate had nothing to judge: its value does not apply (PBO with one
    configuration) or cannot be computed (too few bars); the tables show it as n/a."""


def gate(
    name: str, value: float | None, threshold: float, ok: bool, rule: str, hard: bool = True
) -> GateResult:
    """A gate result; a missing or NaN value fails whatever `ok` says."""
    v = math.nan if value is None else float(value)
    return GateResult(name, bool(ok) and not math.isnan(v), v, threshold, rule, hard)


def _value(m: Metrics, key: str) -> float:
    v = m.get(key)
    return math.nan if v is None else float(v)


def run_gates(test: Metrics, cfg: GatesConfig, coverage: float = 1.0) -> list[GateResult]:
    """Apply the per-run gates to the test aggregates (see `evaluation.backtest.aggregates`).

    Args:
        test: the test-role aggregates of one run.
        cfg: thresholds.
        coverage: fraction of the offered regimes that the test slices cover.
    """
    pos, dd = _value(test, "consistency"), _value(test, "max_drawdown")
    share, bh = _value(test, "best_slice_share"), _value(test, "beats_buy_and_hold")
    gates = [
        gate(
            "pass_majority_slices",
            pos,
            cfg.min_positive_fraction,
            pos > cfg.min_positive_fraction,
            f"fraction of test slices positive after fees > {cfg.min_positive_fraction}",
        ),
        gate(
            "drawdown_under_cap",
            dd,
            cfg.max_drawdown_cap,
            dd <= cfg.max_drawdown_cap,
            f"max drawdown on every test slice <= {cfg.max_drawdown_cap}",
        ),
        gate(
            "no_single_slice_dependency",
            share,
            cfg.max_best_slice_share,
            share <= cfg.max_best_slice_share,
            f"best test slice carries <= {cfg.max_best_slice_share} of the net total (net total > 0)",
        ),
        gate(
            "beats_buy_and_hold",
            bh,
            cfg.min_beats_buy_and_hold,
            bh > cfg.min_beats_buy_and_hold,
            f"fraction of test slices beating buy-and-hold after fees > {cfg.min_beats_buy_and_hold}",
        ),
    ]
    if cfg.require_regime_coverage:
        gates.append(
            gate(
                "regime_coverage",
                coverage,
                1.0,
                coverage >= 1.0,
                "test slices cover every regime label the data offers",
                hard=False,
            )
        )
    return gates


def run_verdict(gates: list[GateResult]) -> tuple[str, str]:
    """(verdict, reason) of one run from its gates: REJECT, RETEST or PASS (see the module docstring).

    The reason names the failed hard gates of a rejected run and the failed soft gates of a run
    to retest (after "missing: ").
    """
    failed = [g.name for g in gates if g.hard and not g.passed]
    if failed:
        return REJECT, "failed: " + ", ".join(failed)
    soft = [g.name for g in gates if not g.hard and not g.passed]
    why = "run gates passed; seed_stability is judged across seeds by the sweep-level step"
    if soft:
        return RETEST, f"{why}; missing: {', '.join(soft)}"
    return PASS, why


def passed_run_gates(verdict: str) -> bool:
    """Whether a run verdict means every hard gate passed (PASS, or RETEST for a soft gate)."""
    return verdict in (PASS, RETEST)


def fitness(test: Metrics, cfg: GatesConfig) -> float:
    """The documented fitness score in [0, 1] (see the module docstring); NaN if an input is."""
    pf = _value(test, "profit_factor")
    parts = [
        _value(test, "consistency"),
        _value(test, "sharpe_mean") / cfg.fitness_sharpe_full,
        1.0 if pf == math.inf else (pf - 1.0) / (cfg.fitness_pf_full - 1.0),
        1.0 - _value(test, "max_drawdown") / cfg.fitness_drawdown_zero,
    ]
    if any(math.isnan(p) for p in parts):
        return math.nan
    return float(np.mean(np.clip(parts, 0.0, 1.0)))


def classify(test: Metrics, cfg: GatesConfig) -> str:
    """APPROVED / REVIEW / DROP from fitness, profit factor, consistency and max drawdown."""
    values = (
        fitness(test, cfg),
        _value(test, "profit_factor"),
        _value(test, "consistency"),
        _value(test, "max_drawdown"),
    )
    for label, (f_min, pf_min, c_min, dd_max) in ((APPROVED, cfg.approved), (REVIEW, cfg.review)):
        f, pf, c, dd = values
        if f >= f_min and pf >= pf_min and c >= c_min and dd <= dd_max:
            return label
    return DROP


def deployment(test: Metrics, cfg: GatesConfig) -> str:
    """live / paper / retrain / drop from walk-forward consistency and fold Sharpe variance.

    Variance is the std of the folds' annualised Sharpe ratios divided by a fold Sharpe's
    sampling error (sqrt(bars per year / bars per fold)): a 60-day fold of hourly bars carries
    an error of ~2.5 on its own, so a raw std threshold of 1 would refuse any agent, skilled or
    not. A dispersion near 1 means the folds differ no more than noise explains; well above it,
    performance depends on the window (regime).
    """
    pos, sd = _value(test, "consistency"), _value(test, "sharpe_dispersion")
    if math.isnan(pos) or math.isnan(sd):
        return RETRAIN
    if pos <= cfg.drop_max_positive:
        return DROP_MODEL
    if pos >= cfg.live[0] and sd < cfg.live[1]:
        return LIVE
    if pos >= cfg.paper[0] and sd < cfg.paper[1]:
        return PAPER
    return RETRAIN
