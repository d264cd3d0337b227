"""Sweep-level gates: group runs by configuration, judge them across seeds and trials, pick a champion.

A configuration is every job of a sweep with the same `rlpipe.config_hash` (the config minus the
seed). Its gates:

- seed_stability: at least `min_seed_pass_fraction` of its seeds pass their run gates (run verdict
  "pass" or "retest", see `rlpipe.gates.rules.passed_run_gates`) and the std of their mean test
  Sharpe is at most `max_seed_sharpe_std`; a single seed can only say "retest";
- deflated_sharpe: the DSR of its test returns (per bar, the mean across its seeds: the seeds
  trade the same bars, so their returns are not independent observations and concatenating them
  would overstate the evidence), deflated for the trials (every configuration tried, times the
  training lengths a run chose among), is at least `min_deflated_sharpe`;
- pbo: the sweep's probability of backtest overfitting (CSCV over the configurations' test
  returns), reported against `max_pbo`. It measures the selection, not a configuration: a high
  PBO says that picking the best of the sweep's configurations adds nothing (which equally good
  configurations produce), so it rejects none; the decision says so beside the champion. With one
  configuration there is no selection (value n/a).

The verdict is "promote" only when the hard gates pass, the candidate run (the configuration's
best seed by validation among those that passed their run gates) is classified in
`promote_classes` with a deployment decision in `promote_deployments`, and every run covered the
data's regimes. Selection uses validation only (`validation/<select_metric>`): the champion is
the promoted configuration with the best mean validation score across seeds, challengers are the
other passing runs of promoted configurations, best validation first. Test results gate, they
never rank; without validation slices no champion is chosen. Nothing that failed a gate is ever
promoted, and a configuration run with registry.promote=false (the smoke preset) is judged but
never champion or challenger.

A search is judged as the search it is: the configurations of records marked `search` (a weekly
sweep's members trained from scratch, `rlpipe.jobs.weekly_plan`) are one hypothesis, their pick, the
searched configuration with the best mean validation score. Only the pick goes through the sweep
gates; the others are `unpicked` (never promoted, kept for later weeks to refine). Every other
configuration (an ordinary sweep's, a continued model's) is tested on its own. The deflated Sharpe
ratio counts the hypotheses the test slices judge (at least the configurations tested here);
choices made on validation (the pick, a run's training length) are not trials on the test slices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rlpipe.gates.pooling import null_sharpe_variance, pbo_gate_of, seed_mean
from rlpipe.gates.rules import (
    PROMOTE,
    REJECT,
    RETEST,
    UNPICKED,
    GateResult,
    GatesConfig,
    gate,
    passed_run_gates,
)
from rlpipe.gates.statistics import PBOResult, deflated_sharpe, sharpe_per_period
from rlpipe.types import FloatArray, Metrics


@dataclass
class RunRecord:
    """What the sweep step needs to know about one finished job."""

    run_id: str
    """The job's run id."""
    config_hash: str
    """Hash of the job's config minus its seed: runs with the same hash are one configuration."""
    seed: int
    """The job's seed."""
    run_verdict: str
    """The job's run verdict: PASS, RETEST or REJECT (`rlpipe.gates.rules.run_verdict`)."""
    test: Metrics
    """The job's test-role aggregates."""
    classification: str
    """APPROVED, REVIEW or DROP (`rlpipe.gates.rules.classify`)."""
    deployment: str
    """live, paper, retrain or drop (`rlpipe.gates.rules.deployment`)."""
    returns: FloatArray = field(repr=False)
    """The agent's per-bar test returns, slices concatenated in order."""
    model_version: str = ""
    """Registered model version of the job, if any."""
    label: str = ""
    """Human-readable name of the configuration, as the caller gives it."""
    regimes_missing: tuple[str, ...] = ()
    """Regimes the data offers that the job's test slices miss."""
    promotable: bool = True
    """False for a job run with registry.promote=false: judged like any other, never champion or
    challenger."""
    validation: Metrics = field(default_factory=dict)
    """The job's validation-role aggregates: what ranks it (never its test results)."""
    search: bool = False
    """One configuration of a search (a weekly member trained from scratch): the sweep tests only the
    search's pick, its best searched configuration by mean validation score."""


@dataclass
class ConfigDecision:
    """The sweep's judgement of one configuration."""

    config_hash: str
    label: str
    runs: list[RunRecord]
    gates: list[GateResult]
    verdict: str
    reason: str
    candidate: RunRecord | None
    mean_total: float
    deflated_sharpe: float
    mean_validation: float = math.nan
    """The mean across seeds of the validation score (`GatesConfig.select_metric`): what ranks it."""

    @property
    def passing(self) -> list[RunRecord]:
        """The runs that passed their run gates (`passed_run_gates`), in order."""
        return [r for r in self.runs if passed_run_gates(r.run_verdict)]


@dataclass
class SweepDecision:
    """Every configuration's decision, the champion and the challengers."""

    configs: list[ConfigDecision]
    champion: RunRecord | None
    challengers: list[RunRecord]
    pbo: PBOResult | None
    n_trials: int
    """Hypotheses the test slices judged, for the deflated Sharpe ratio."""
    selection: str = ""
    """How the champion was chosen, or why none was (validation score, PBO caveat)."""


def _seed_stability(runs: Sequence[RunRecord], cfg: GatesConfig) -> GateResult:
    frac = float(np.mean([passed_run_gates(r.run_verdict) for r in runs]))
    sharpes = np.array([r.test.get("sharpe_mean", math.nan) for r in runs], dtype=float)
    spread = float(np.std(sharpes, ddof=1)) if len(runs) > 1 else math.nan
    rule = (
        f">= {cfg.min_seed_pass_fraction} of seeds pass their run gates and the std of their "
        f"test Sharpe ({spread:.2f}) <= {cfg.max_seed_sharpe_std}; needs 2+ seeds"
    )
    ok = len(runs) > 1 and frac >= cfg.min_seed_pass_fraction and spread <= cfg.max_seed_sharpe_std
    return gate("seed_stability", frac, cfg.min_seed_pass_fraction, ok, rule)


def evaluate_sweep(records: Sequence[RunRecord], cfg: GatesConfig, trials: int = 0) -> SweepDecision:
    """Judge every configuration of a sweep and choose the champion and challengers by validation.

    `trials` (for the deflated Sharpe ratio) counts the hypotheses the sweep's test slices judge,
    including configurations whose runs failed; at least the configurations tested here.
    """
    hashes = list(dict.fromkeys(r.config_hash for r in records))
    by_hash = {h: [r for r in records if r.config_hash == h] for h in hashes}
    pick = search_pick(by_hash, cfg)
    tested = [h for h in hashes if h == pick or not by_hash[h][0].search]
    trials = max(trials, len(tested))
    pooled = {h: seed_mean([r.returns for r in by_hash[h]]) for h in hashes}
    trial_sr = np.array([sharpe_per_period(pooled[h]) for h in hashes], dtype=float)
    finite = trial_sr[np.isfinite(trial_sr)]
    sr_var = float(np.var(finite, ddof=1)) if len(finite) > 1 else 0.0
    if trials > 1:  # trials this sweep cannot see (failed configs) vary at least by chance
        sr_var = max(sr_var, null_sharpe_variance(pooled.values()))
    pbo_gate, pbo = pbo_gate_of([pooled[h] for h in hashes], cfg)
    configs = [
        _judge(by_hash[h], pooled[h], trials, sr_var, pbo_gate, cfg)
        if h in tested
        else _unpicked(by_hash[h], by_hash.get(pick or ""), cfg)
        for h in hashes
    ]
    promoted = [c for c in configs if c.verdict == PROMOTE and all(r.promotable for r in c.runs)]
    ranked = sorted(
        (c for c in promoted if math.isfinite(c.mean_validation)), key=lambda c: -c.mean_validation
    )
    champion = ranked[0].candidate if ranked else None
    challengers = [r for c in ranked for r in c.passing if r is not champion]
    challengers.sort(key=lambda r: -_rank_value(r, cfg))
    return SweepDecision(
        configs, champion, challengers, pbo, trials, _selection(promoted, ranked, pbo_gate, cfg)
    )


def search_pick(by_hash: dict[str, list[RunRecord]], cfg: GatesConfig) -> str | None:
    """The search's pick: of the configurations whose records are marked `search`, the one with the
    best mean validation score (`cfg.select_metric`) across its seeds; None when none has one."""
    scores = {h: _mean_validation(runs, cfg) for h, runs in by_hash.items() if runs[0].search}
    scored = {h: s for h, s in scores.items() if math.isfinite(s)}
    return max(scored, key=lambda h: scored[h]) if scored else None


def _mean_validation(runs: Sequence[RunRecord], cfg: GatesConfig) -> float:
    scores = [_score(r, cfg) for r in runs]
    return float(np.mean(scores)) if scores and all(math.isfinite(x) for x in scores) else math.nan


def _unpicked(runs: list[RunRecord], pick: list[RunRecord] | None, cfg: GatesConfig) -> ConfigDecision:
    """A searched configuration that is not the search's pick: the test slices do not judge it."""
    metric = cfg.select_metric
    reason = (
        f"not the search's pick ({pick[0].label}, mean validation {metric} "
        f"{_mean_validation(pick, cfg):.3f}); the search is tested through its pick alone"
        if pick
        else f"no searched configuration has a validation {metric} to pick by"
    )
    candidate = max(runs, key=lambda r: _rank_value(r, cfg))
    totals = [r.test.get("total", math.nan) for r in runs]
    return ConfigDecision(
        runs[0].config_hash, runs[0].label, runs, [_seed_stability(runs, cfg)], UNPICKED, reason,
        candidate, float(np.mean(totals)), math.nan, _mean_validation(runs, cfg),
    )  # fmt: skip


def _score(r: RunRecord, cfg: GatesConfig) -> float:
    return float(r.validation.get(cfg.select_metric, math.nan))


def _rank_value(r: RunRecord, cfg: GatesConfig) -> float:
    score = _score(r, cfg)
    return score if math.isfinite(score) else -math.inf


def _judge(
    runs: list[RunRecord],
    pooled: FloatArray,
    trials: int,
    sr_var: float,
    pbo_gate: GateResult,
    cfg: GatesConfig,
) -> ConfigDecision:
    """One configuration's gates, verdict and candidate (its best passing seed by validation)."""
    dsr = deflated_sharpe(pooled, trials, sr_var) if len(pooled) > 1 else math.nan
    rule = f"DSR of the seeds' mean test returns given {trials} trial(s) >= {cfg.min_deflated_sharpe}"
    gates = [
        _seed_stability(runs, cfg),
        gate("deflated_sharpe", dsr, cfg.min_deflated_sharpe, dsr >= cfg.min_deflated_sharpe, rule),
        pbo_gate,
    ]
    passing = [r for r in runs if passed_run_gates(r.run_verdict)]
    candidate = max(passing or runs, key=lambda r: _rank_value(r, cfg))
    verdict, reason = _verdict(runs, passing, candidate, gates, cfg)
    totals = [r.test.get("total", math.nan) for r in runs]
    return ConfigDecision(
        runs[0].config_hash, runs[0].label, runs, gates, verdict, reason, candidate,
        float(np.mean(totals)), float(dsr), _mean_validation(runs, cfg),
    )  # fmt: skip


def _selection(
    promoted: list[ConfigDecision], ranked: list[ConfigDecision], pbo_gate: GateResult, cfg: GatesConfig
) -> str:
    if not promoted:
        return "no configuration passed every sweep gate"
    if not ranked:
        return (
            f"no champion: the promoted configurations have no validation/{cfg.select_metric} to choose "
            "by, and the test slices never choose; declare validation slices (slices.validation_bars "
            "for walk-forward)"
        )
    best = ranked[0]
    text = (
        f"champion: configuration {best.label}, best mean validation {cfg.select_metric} "
        f"({best.mean_validation:.3f}) of {len(ranked)} promoted; its best seed by validation"
    )
    if not pbo_gate.passed and math.isfinite(pbo_gate.value):
        text += (
            f"; PBO {pbo_gate.value:.2f} > {cfg.max_pbo}: choosing between these configurations is not "
            "evidence that the champion is better than the others (each passed its own gates)"
        )
    return text


def _verdict(
    runs: list[RunRecord],
    passing: list[RunRecord],
    candidate: RunRecord,
    gates: list[GateResult],
    cfg: GatesConfig,
) -> tuple[str, str]:
    if not passing:
        return REJECT, "no seed passed its run gates"
    if len(runs) == 1:
        return RETEST, "a single seed cannot show seed stability; rerun with more seeds"
    failed = [g.name for g in gates if not g.passed and g.hard]
    if failed:
        return REJECT, "failed: " + ", ".join(failed)
    if candidate.classification not in cfg.promote_classes:
        return REJECT, f"best seed classified {candidate.classification} (promotable: {cfg.promote_classes})"
    if candidate.deployment not in cfg.promote_deployments:
        return (
            REJECT,
            f"walk-forward decision is '{candidate.deployment}' (promotable: {cfg.promote_deployments})",
        )
    missing = sorted({m for r in runs for m in r.regimes_missing})
    if missing:
        return RETEST, f"test slices miss regime(s) {missing}; add test windows for them"
    if not all(r.promotable for r in runs):
        return PROMOTE, "all sweep gates passed; not a registry candidate (registry.promote=false)"
    return PROMOTE, "all sweep gates passed"
