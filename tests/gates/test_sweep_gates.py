"""Sweep-level decisions on hand-made run records: seed stability, deflated Sharpe, PBO, the champion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlpipe.gates.pooling import seed_mean
from rlpipe.gates.rules import (
    APPROVED,
    DROP,
    DROP_MODEL,
    LIVE,
    PAPER,
    PASS,
    PROMOTE,
    REJECT,
    RETEST,
    RETRAIN,
    REVIEW,
    UNPICKED,
    GatesConfig,
)
from rlpipe.gates.statistics import deflated_sharpe, pbo_cscv, sharpe_per_period
from rlpipe.gates.sweep_gates import ConfigDecision, RunRecord, SweepDecision, evaluate_sweep
from tests.support.records import record

CFG = GatesConfig()


def summary(d: SweepDecision) -> list[tuple]:
    """Everything a sweep decision says, as plain values (NaN shown as None so that it compares)."""

    def num(x: float) -> float | None:
        return None if math.isnan(x) else x

    def config(c: ConfigDecision) -> tuple:
        gates = [(g.name, g.passed, num(g.value), g.rule) for g in c.gates]
        cand = c.candidate.run_id if c.candidate else None
        return (c.config_hash, c.verdict, c.reason, gates, cand, [r.run_id for r in c.passing], c.mean_total)

    champion = d.champion.run_id if d.champion else None
    return [*map(config, d.configs), (champion, [r.run_id for r in d.challengers], d.n_trials)]


SEED_RULE = (
    ">= 0.6 of seeds pass their run gates and the std of their test Sharpe ({}) <= 1.0; needs 2+ seeds"
)
NOT_APPLICABLE = "not applicable: one configuration, so no selection between configurations to overfit"


def test_a_single_seed_can_only_say_retest():
    d = evaluate_sweep([record("a", 1)], CFG)
    assert d.configs[0].verdict == RETEST and "single seed" in d.configs[0].reason
    assert d.configs[0].reason == "a single seed cannot show seed stability; rerun with more seeds"
    assert d.champion is None
    stability = d.configs[0].gates[0]
    assert (stability.name, stability.passed, stability.value) == ("seed_stability", False, 1.0)
    assert stability.rule == SEED_RULE.format("nan")


def test_stable_skilled_configuration_is_promoted_and_its_best_seed_is_champion():
    runs = [record("a", s, total=t) for s, t in ((1, 0.1), (2, 0.3), (3, 0.2))]
    d = evaluate_sweep(runs, CFG)
    (c,) = d.configs
    assert c.verdict == PROMOTE, c.reason
    assert c.reason == "all sweep gates passed"
    assert d.champion is runs[1]
    assert [r.seed for r in d.challengers] == [3, 1]  # passing, not best; best first
    assert c.passing == runs and c.candidate is runs[1]
    assert c.mean_total == pytest.approx(0.2)
    assert [(g.name, g.passed) for g in c.gates] == [
        ("seed_stability", True),
        ("deflated_sharpe", True),
        ("pbo", True),
    ]


def test_seed_stability_fails_when_too_few_seeds_pass_or_sharpe_spreads():
    few = [record("a", 1), record("a", 2, verdict=REJECT), record("a", 3, verdict=REJECT)]
    c = evaluate_sweep(few, CFG).configs[0]
    assert c.verdict == REJECT and "seed_stability" in c.reason
    assert c.reason == "failed: seed_stability"
    assert c.gates[0].value == pytest.approx(1 / 3)
    assert c.passing == few[:1] and c.candidate is few[0]
    spread = [record("a", 1, sharpe=0.0), record("a", 2, sharpe=3.0)]
    c = evaluate_sweep(spread, CFG).configs[0]
    assert not c.gates[0].passed and c.verdict == REJECT
    # Every seed passed; the std of their Sharpe ratios, 3 / sqrt(2) = 2.12, is over the cap of 1.
    assert c.gates[0].value == 1.0
    assert c.gates[0].rule == SEED_RULE.format("2.12")
    assert c.reason == "failed: seed_stability"


def test_no_seed_passing_rejects_and_nothing_failing_is_promoted():
    runs = [record("a", s, verdict=REJECT) for s in (1, 2, 3)]
    d = evaluate_sweep(runs, CFG)
    assert d.configs[0].verdict == REJECT and d.champion is None and d.challengers == []
    assert d.configs[0].reason == "no seed passed its run gates"
    assert d.configs[0].passing == [] and d.configs[0].gates[0].value == 0.0


# ------------------------------------------------------------------------------ run verdicts
def test_runs_to_retest_and_runs_that_pass_both_passed_their_run_gates():
    runs = [
        record("a", 1, verdict=PASS, total=0.1),
        record("a", 2, verdict=RETEST, total=0.3),
        record("a", 3, verdict=REJECT, total=0.5),
    ]
    c = evaluate_sweep(runs, CFG).configs[0]
    assert c.passing == runs[:2]
    assert c.gates[0].value == pytest.approx(2 / 3) and c.gates[0].passed
    assert c.candidate is runs[1]  # the best seed among those that passed, not the rejected one


def test_a_sweep_judges_retest_runs_exactly_as_it_judges_passing_runs():
    def sweep(verdict: str) -> SweepDecision:
        runs = [
            record("a", 1, verdict=REJECT),
            *(record("a", s, verdict=verdict, drift=0.002) for s in (2, 3)),
        ]
        runs += [
            record("b", s, verdict=verdict, drift=0.004, total=0.1 * s, missing=("bear",)) for s in (1, 2, 3)
        ]
        runs += [record("c", s, verdict=verdict, drift=0.006, total=0.1 * s) for s in (1, 2, 3)]
        return evaluate_sweep(runs, CFG)

    # Before `PASS` existed, every run that passed its run gates was "retest"; the sweep's decisions
    # must not depend on which of the two a run got.
    assert summary(sweep(RETEST)) == summary(sweep(PASS))
    decision = sweep(PASS)
    assert [c.verdict for c in decision.configs] == [REJECT, RETEST, PROMOTE]
    assert decision.configs[0].reason == "failed: deflated_sharpe"
    assert [r.run_id for r in decision.configs[0].passing] == ["a-2", "a-3"]
    assert decision.champion is not None and decision.champion.run_id == "c-3"


@pytest.mark.parametrize("verdict", [REJECT, PROMOTE, "", "passed"])
def test_only_pass_and_retest_count_as_passing_run_gates(verdict: str):
    runs = [record("a", 1), record("a", 2, verdict=verdict)]
    c = evaluate_sweep(runs, CFG).configs[0]
    assert c.passing == runs[:1]
    assert c.gates[0].value == 0.5 and not c.gates[0].passed


def test_configuration_label_and_seed_are_taken_as_given():
    runs = [record("a", 1, label="ppo lr=3e-4-s1"), record("a", 22, label="other-s22")]
    d = evaluate_sweep(runs, CFG)
    assert d.configs[0].label == "ppo lr=3e-4-s1"  # the first run's label, not parsed or trimmed
    assert [r.seed for r in d.configs[0].runs] == [1, 22]


# ------------------------------------------------------------------------------ trials
def test_deflated_sharpe_is_deflated_by_the_number_of_configurations():
    runs = [record(c, s, drift=0.0008) for c in ("a", "b", "c") for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    assert d.n_trials == 3
    pooled = seed_mean([r.returns for r in runs if r.config_hash == "a"])  # per bar, across seeds
    srs = [sharpe_per_period(seed_mean([r.returns for r in runs if r.config_hash == h])) for h in "abc"]
    expected = deflated_sharpe(pooled, 3, float(np.var(srs, ddof=1)))
    assert d.configs[0].deflated_sharpe == pytest.approx(expected)
    assert d.configs[0].deflated_sharpe <= deflated_sharpe(pooled, 1, 0.0)
    dsr_gate = d.configs[0].gates[1]
    assert (dsr_gate.name, dsr_gate.value, dsr_gate.threshold) == (
        "deflated_sharpe",
        pytest.approx(expected),
        0.95,
    )
    assert dsr_gate.rule == "DSR of the seeds' mean test returns given 3 trial(s) >= 0.95"


def test_noise_configurations_fail_the_deflated_sharpe_gate():
    runs = [record(c, s, drift=0.0) for c in ("a", "b", "c", "d") for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    assert all(c.verdict == REJECT for c in d.configs)
    assert all("deflated_sharpe" in c.reason for c in d.configs)
    assert [c.reason for c in d.configs] == ["failed: deflated_sharpe"] * 4
    assert all(c.deflated_sharpe < 0.95 for c in d.configs) and d.champion is None


def test_pbo_does_not_apply_to_one_configuration_and_is_computed_for_several():
    single = evaluate_sweep([record("a", 1), record("a", 2)], CFG)
    pbo = next(g for g in single.configs[0].gates if g.name == "pbo")
    assert pbo.passed and math.isnan(pbo.value) and "not applicable" in pbo.rule and single.pbo is None
    assert pbo.rule == NOT_APPLICABLE
    runs = [record(c, s) for c in ("a", "b") for s in (1, 2)]
    several = evaluate_sweep(runs, CFG)
    assert several.pbo is not None and 0.0 <= several.pbo.pbo <= 1.0
    gate = next(g for g in several.configs[0].gates if g.name == "pbo")
    assert gate.value == several.pbo.pbo
    # The PBO is CSCV over each configuration's mean return across its seeds.
    means = [np.mean([r.returns for r in runs if r.config_hash == h], axis=0) for h in "ab"]
    assert several.pbo.pbo == pbo_cscv(np.column_stack(means), CFG.pbo_splits).pbo
    assert gate.rule == (
        "probability of backtest overfitting (CSCV, 10 blocks) <= 0.5; judges the choice between "
        "configurations, rejects none"
    )


def test_pbo_above_its_threshold_rejects_no_configuration_and_is_said_with_the_champion():
    strict = GatesConfig(max_pbo=-1.0)
    d = evaluate_sweep([record(c, s, drift=0.006) for c in ("a", "b") for s in (1, 2)], strict)
    assert [c.verdict for c in d.configs] == [PROMOTE, PROMOTE]
    assert not next(g for g in d.configs[0].gates if g.name == "pbo").passed
    assert d.champion is not None
    assert d.selection.endswith(
        f"; PBO {d.pbo.pbo:.2f} > -1.0: choosing between these configurations is not evidence that the "  # type: ignore[union-attr]
        "champion is better than the others (each passed its own gates)"
    )


def test_pbo_that_cannot_be_computed_fails_its_gate_and_says_why():
    runs = [record(c, s, n=10) for c in ("a", "b") for s in (1, 2)]  # 10 rows: too few for 10 blocks
    d = evaluate_sweep(runs, CFG)
    gate = next(g for g in d.configs[0].gates if g.name == "pbo")
    assert not gate.passed and math.isnan(gate.value) and d.pbo is None
    assert gate.rule.startswith("cannot be computed: performance has 10 rows")
    assert not any("pbo" in c.reason for c in d.configs)  # it judges the choice, not a configuration


# ------------------------------------------------------------------------------ promotion
@pytest.mark.parametrize(
    ("cls", "dep", "ok"),
    [
        (REVIEW, PAPER, True),
        (APPROVED, LIVE, True),
        (DROP, PAPER, False),
        (REVIEW, RETRAIN, False),
        (APPROVED, DROP_MODEL, False),
    ],
)
def test_classification_and_deployment_must_be_promotable(cls, dep, ok):
    d = evaluate_sweep([record("a", s, cls=cls, dep=dep) for s in (1, 2)], CFG)
    assert (d.configs[0].verdict == PROMOTE) is ok


@pytest.mark.parametrize(
    ("cls", "dep", "reason"),
    [
        (DROP, PAPER, "best seed classified DROP (promotable: ['APPROVED', 'REVIEW'])"),
        (REVIEW, RETRAIN, "walk-forward decision is 'retrain' (promotable: ['live', 'paper'])"),
        (APPROVED, DROP_MODEL, "walk-forward decision is 'drop' (promotable: ['live', 'paper'])"),
    ],
)
def test_an_unpromotable_candidate_is_rejected_with_its_decision_named(cls, dep, reason):
    d = evaluate_sweep([record("a", s, cls=cls, dep=dep) for s in (1, 2)], CFG)
    assert (d.configs[0].verdict, d.configs[0].reason) == (REJECT, reason)
    assert d.champion is None and d.challengers == []


def test_a_test_set_missing_a_regime_makes_retest_not_promote():
    d = evaluate_sweep([record("a", 1), record("a", 2, missing=("bear",))], CFG)
    assert d.configs[0].verdict == RETEST and "bear" in d.configs[0].reason and d.champion is None
    assert d.configs[0].reason == "test slices miss regime(s) ['bear']; add test windows for them"
    several = evaluate_sweep(
        [record("a", 1, missing=("sideways", "bear")), record("a", 2, missing=("bear",))], CFG
    )
    assert (
        several.configs[0].reason
        == "test slices miss regime(s) ['bear', 'sideways']; add test windows for them"
    )


def test_champion_is_the_promoted_configuration_with_the_best_mean_total():
    # b is truly better than a (so the in-sample winner keeps winning out of sample: low PBO)
    runs = [record("a", s, total=0.10, drift=0.002) for s in (1, 2)]
    runs += [record("b", s, total=0.30, drift=0.006) for s in (1, 2)]
    runs += [
        record("c", s, total=0.50, drift=0.0, verdict=REJECT) for s in (1, 2)
    ]  # best total, but failed its gates
    d = evaluate_sweep(runs, CFG)
    assert d.champion is not None and d.champion.config_hash == "b"
    promoted = {c.config_hash for c in d.configs if c.verdict == PROMOTE}
    assert "b" in promoted and "c" not in promoted
    assert {r.config_hash for r in d.challengers} <= promoted and len(d.challengers) >= 1
    assert all(r.config_hash != "c" for r in [d.champion, *d.challengers])
    assert d.champion is runs[2] and d.challengers == [runs[3]]
    assert [(c.config_hash, c.verdict) for c in d.configs] == [("a", REJECT), ("b", PROMOTE), ("c", REJECT)]
    assert [c.mean_total for c in d.configs] == pytest.approx([0.10, 0.30, 0.50])


def test_champion_among_several_promoted_configurations_has_the_highest_mean_total():
    runs = [record("a", s, total=0.10, drift=0.006) for s in (1, 2)]
    runs += [record("b", s, total=t, drift=0.006) for s, t in ((1, 0.15), (2, 0.35))]
    d = evaluate_sweep(runs, CFG)
    assert [c.verdict for c in d.configs] == [PROMOTE, PROMOTE], [c.reason for c in d.configs]
    assert d.champion is runs[3]  # b: mean total 0.25 over a's 0.10; its best seed
    assert d.challengers == [runs[2], runs[0], runs[1]]  # every other passing run, best total first


def test_a_configuration_run_with_registry_promote_false_is_judged_but_never_champion():
    runs = [record("a", s, total=t, drift=0.006) for s, t in ((1, 0.05), (2, 0.10))]
    smoke = [record("b", s, total=t, drift=0.006) for s, t in ((1, 0.15), (2, 0.35))]
    for r in smoke:
        r.promotable = False
    d = evaluate_sweep(runs + smoke, CFG)
    assert [c.verdict for c in d.configs] == [PROMOTE, PROMOTE]
    assert d.configs[1].reason == "all sweep gates passed; not a registry candidate (registry.promote=false)"
    assert d.champion is runs[1] and d.challengers == [runs[0]]  # b has the better total, and is out
    alone = evaluate_sweep(smoke, CFG)
    assert alone.champion is None and alone.challengers == []


def test_the_champion_is_chosen_by_validation_never_by_the_test_slices():
    # b has the better test totals, a the better validation scores: a is the champion
    runs = [record("a", s, total=0.10, val=1.5 + s / 10, drift=0.006) for s in (1, 2)]
    runs += [record("b", s, total=0.40, val=0.5, drift=0.006) for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    assert [c.verdict for c in d.configs] == [PROMOTE, PROMOTE]
    assert d.champion is runs[1]  # a's best seed by validation (1.7 > 1.6)
    assert d.challengers == [runs[0], runs[2], runs[3]]  # best validation first
    assert [c.mean_validation for c in d.configs] == pytest.approx([1.65, 0.5])
    assert d.selection.startswith("champion: configuration a, best mean validation sharpe_mean (1.650) of 2")


def test_without_validation_scores_no_champion_is_chosen_and_the_decision_says_why():
    runs = [record("a", s, drift=0.006) for s in (1, 2)]
    for r in runs:
        r.validation = {}
    d = evaluate_sweep(runs, CFG)
    assert d.configs[0].verdict == PROMOTE and d.champion is None and d.challengers == []
    assert d.selection.startswith("no champion: the promoted configurations have no validation/sharpe_mean")


def test_hypotheses_the_sweep_cannot_see_count_as_trials_for_the_deflated_sharpe():
    runs = [record("a", s, drift=0.0008) for s in (1, 2, 3)]
    one = evaluate_sweep(runs, CFG)
    four = evaluate_sweep(runs, CFG, trials=4)  # e.g. three more configurations whose runs failed
    assert (one.n_trials, four.n_trials) == (1, 4)
    pooled = seed_mean([r.returns for r in runs])
    # one configuration: the spread of the unseen trials is the chance spread of its Sharpe, 1/T
    assert four.configs[0].deflated_sharpe == pytest.approx(deflated_sharpe(pooled, 4, 1 / len(pooled)))
    assert four.configs[0].deflated_sharpe < one.configs[0].deflated_sharpe
    assert "given 4 trial(s)" in four.configs[0].gates[1].rule


def searched(config: str, seed: int, **kw) -> RunRecord:
    r = record(config, seed, **kw)
    r.search = True
    return r


def test_a_search_is_tested_through_its_pick_by_validation_alone():
    # the best on test ("b") is not the best on validation ("a"): the search's pick is "a"
    runs = [searched("a", s, val=1.5, total=0.1) for s in (1, 2)]
    runs += [searched("b", s, drift=0.01, val=1.0, total=0.9) for s in (1, 2)]
    runs += [searched("c", s, val=0.5) for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    a, b, c = d.configs
    assert a.verdict == PROMOTE and d.champion is not None and d.champion.config_hash == "a"
    assert (b.verdict, c.verdict) == (UNPICKED, UNPICKED)
    assert (
        b.reason == "not the search's pick (a, mean validation sharpe_mean 1.500); "
        "the search is tested through its pick alone"
    )
    assert math.isnan(b.deflated_sharpe) and [g.name for g in b.gates] == ["seed_stability"]
    assert d.n_trials == 1 and "given 1 trial(s)" in a.gates[1].rule
    assert [r.run_id for r in d.challengers] == ["a-2"]  # an unpicked configuration is never staged


def test_continued_models_are_each_a_hypothesis_beside_the_search_pick():
    runs = [searched(h, s, drift=0.004, val=v) for h, v in (("a", 1.0), ("b", 2.0)) for s in (1, 2)]
    runs += [record(h, s, drift=0.004, val=0.5) for h in ("r", "q") for s in (1, 2)]  # continuations
    d = evaluate_sweep(runs, CFG)
    assert {c.config_hash: c.verdict for c in d.configs} == {
        "a": UNPICKED,
        "b": PROMOTE,
        "r": PROMOTE,
        "q": PROMOTE,
    }
    assert d.n_trials == 3  # the pick and two continuations
    assert d.champion is not None and d.champion.config_hash == "b"
    assert {r.config_hash for r in d.challengers} == {"b", "r", "q"}


def test_a_search_without_validation_scores_has_no_pick_and_promotes_nothing():
    runs = [searched(h, s) for h in "ab" for s in (1, 2)]
    for r in runs:
        r.validation = {}
    d = evaluate_sweep(runs, CFG)
    assert [c.verdict for c in d.configs] == [UNPICKED, UNPICKED] and d.champion is None
    assert d.configs[0].reason == "no searched configuration has a validation sharpe_mean to pick by"
