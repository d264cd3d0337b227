"""Per-run gates at and around their thresholds, missing/NaN metrics, the run verdict (pass, retest,
reject), and the fitness, classification and deployment rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlpipe.gates import PASS, GateResult, GatesConfig, passed_run_gates, run_gates, run_verdict
from rlpipe.gates.rules import (
    APPROVED,
    DROP,
    DROP_MODEL,
    LIVE,
    PAPER,
    PROMOTE,
    REJECT,
    RETEST,
    RETRAIN,
    REVIEW,
    classify,
    deployment,
    fitness,
    gate,
)

CFG = GatesConfig(min_positive_fraction=0.5, max_drawdown_cap=0.15, max_best_slice_share=0.6)
GOOD = {"consistency": 0.8, "max_drawdown": 0.05, "best_slice_share": 0.3, "beats_buy_and_hold": 0.8}
EPS = 1e-9
PASSED_WHY = "run gates passed; seed_stability is judged across seeds by the sweep-level step"


def named(metrics: dict[str, float], name: str, cfg: GatesConfig = CFG) -> GateResult:
    (g,) = [g for g in run_gates(metrics, cfg) if g.name == name]
    return g


# ------------------------------------------------------------------------------ run gates
def test_gates_are_the_per_run_rules_in_order() -> None:
    gates = run_gates(GOOD, CFG)
    assert [g.name for g in gates] == [
        "pass_majority_slices",
        "drawdown_under_cap",
        "no_single_slice_dependency",
        "beats_buy_and_hold",
        "regime_coverage",
    ]
    assert all(g.passed for g in gates)
    assert [g.value for g in gates] == [0.8, 0.05, 0.3, 0.8, 1.0]
    assert [g.threshold for g in gates] == [0.5, 0.15, 0.6, 0.5, 1.0]
    assert [g.hard for g in gates] == [True, True, True, True, False]


def test_gates_state_their_rule_with_the_threshold_used() -> None:
    assert [g.rule for g in run_gates(GOOD, CFG)] == [
        "fraction of test slices positive after fees > 0.5",
        "max drawdown on every test slice <= 0.15",
        "best test slice carries <= 0.6 of the net total (net total > 0)",
        "fraction of test slices beating buy-and-hold after fees > 0.5",
        "test slices cover every regime label the data offers",
    ]


def test_default_thresholds_judge_a_run_at_their_boundaries() -> None:
    defaults = GatesConfig()
    thresholds = [g.threshold for g in run_gates(GOOD, defaults) if g.hard]
    assert thresholds[:3] == [0.5, 0.15, 0.6]
    at_edges = {"consistency": 0.5, "max_drawdown": 0.15, "best_slice_share": 0.6, "beats_buy_and_hold": 0.5}
    assert [g.passed for g in run_gates(at_edges, defaults)] == [False, True, True, False, True]
    past_edges = {"consistency": 0.5 + EPS, "max_drawdown": 0.15 + EPS, "best_slice_share": 0.6 + EPS}
    passed = [
        g.passed for g in run_gates({**at_edges, **past_edges, "beats_buy_and_hold": 0.5 + EPS}, defaults)
    ]
    assert passed == [True, False, False, True, True]


@pytest.mark.parametrize(
    ("consistency", "passed"),
    [(0.5 - EPS, False), (0.5, False), (0.5 + EPS, True), (2 / 3, True), (1.0, True), (0.0, False)],
)
def test_majority_of_slices_must_be_strictly_above_min_positive_fraction(
    consistency: float, passed: bool
) -> None:
    # half the slices positive is not a majority
    assert named({**GOOD, "consistency": consistency}, "pass_majority_slices").passed is passed


@pytest.mark.parametrize(
    ("drawdown", "passed"),
    [(0.0, True), (0.15 - EPS, True), (0.15, True), (0.15 + EPS, False), (0.9, False)],
)
def test_drawdown_passes_at_or_under_the_cap(drawdown: float, passed: bool) -> None:
    assert named({**GOOD, "max_drawdown": drawdown}, "drawdown_under_cap").passed is passed


@pytest.mark.parametrize(
    ("share", "passed"),
    [(0.2, True), (0.6 - EPS, True), (0.6, True), (0.6 + EPS, False), (1.0, False), (1.5, False)],
)
def test_best_slice_share_passes_at_or_under_the_maximum(share: float, passed: bool) -> None:
    assert named({**GOOD, "best_slice_share": share}, "no_single_slice_dependency").passed is passed


@pytest.mark.parametrize(("bh", "passed"), [(0.5, False), (0.5 + EPS, True), (0.4, False), (1.0, True)])
def test_beating_buy_and_hold_needs_a_strict_majority(bh: float, passed: bool) -> None:
    assert named({**GOOD, "beats_buy_and_hold": bh}, "beats_buy_and_hold").passed is passed


def test_thresholds_come_from_the_config() -> None:
    strict = GatesConfig(
        min_positive_fraction=0.8,
        max_drawdown_cap=0.04,
        max_best_slice_share=0.25,
        min_beats_buy_and_hold=0.9,
    )
    assert [g.passed for g in run_gates(GOOD, strict) if g.hard] == [False, False, False, False]
    assert [g.threshold for g in run_gates(GOOD, strict) if g.hard] == [0.8, 0.04, 0.25, 0.9]
    rule = named(GOOD, "pass_majority_slices", strict).rule
    assert "0.8" in rule
    assert rule == "fraction of test slices positive after fees > 0.8"


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("consistency", "pass_majority_slices"),
        ("max_drawdown", "drawdown_under_cap"),
        ("best_slice_share", "no_single_slice_dependency"),
        ("beats_buy_and_hold", "beats_buy_and_hold"),
    ],
)
def test_a_nan_or_missing_metric_fails_its_gate_and_only_its_gate(key: str, name: str) -> None:
    for metrics in ({**GOOD, key: math.nan}, {k: v for k, v in GOOD.items() if k != key}):
        gates = {g.name: g for g in run_gates(metrics, CFG)}
        assert not gates[name].passed and math.isnan(gates[name].value)
        assert all(g.passed for n, g in gates.items() if n != name)


def test_a_gate_with_a_nan_or_missing_value_fails_whatever_its_comparison_says() -> None:
    for value in (None, math.nan):
        g = gate("g", value, 1.0, True, "r")
        assert (g.name, g.passed, g.threshold, g.rule, g.hard) == ("g", False, 1.0, "r", True)
        assert math.isnan(g.value)
    assert gate("g", 2, 1.0, True, "r", hard=False) == GateResult("g", True, 2.0, 1.0, "r", False)
    assert gate("g", 2.0, 1.0, False, "r") == GateResult("g", False, 2.0, 1.0, "r", True)


def test_empty_aggregates_fail_every_gate() -> None:
    assert [g.passed for g in run_gates({}, CFG) if g.hard] == [False, False, False, False]
    assert run_verdict(run_gates({}, CFG))[0] == REJECT
    assert run_verdict(run_gates({}, CFG)) == (
        REJECT,
        "failed: pass_majority_slices, drawdown_under_cap, no_single_slice_dependency, beats_buy_and_hold",
    )


def test_gate_values_are_plain_floats_and_passed_plain_bools() -> None:
    gates = run_gates({k: np.float64(v) for k, v in GOOD.items()}, CFG)
    assert all(type(g.passed) is bool and type(g.value) is float for g in gates)


# ------------------------------------------------------------------------------ regime coverage
def test_missing_regime_coverage_makes_retest_not_reject_and_says_why() -> None:
    gates = run_gates(GOOD, CFG, coverage=2 / 3)
    cov = next(g for g in gates if g.name == "regime_coverage")
    assert not cov.passed and not cov.hard and cov.value == pytest.approx(2 / 3)
    verdict, reason = run_verdict(gates)
    assert verdict == RETEST and "regime_coverage" in reason
    assert reason == f"{PASSED_WHY}; missing: regime_coverage"
    no_check = GatesConfig(require_regime_coverage=False)
    assert "regime_coverage" not in [g.name for g in run_gates(GOOD, no_check, coverage=0.0)]


def test_without_the_coverage_requirement_a_run_missing_regimes_passes() -> None:
    no_check = GatesConfig(require_regime_coverage=False)
    gates = run_gates(GOOD, no_check, coverage=0.0)
    assert [g.name for g in gates] == [
        "pass_majority_slices",
        "drawdown_under_cap",
        "no_single_slice_dependency",
        "beats_buy_and_hold",
    ]
    assert run_verdict(gates) == (PASS, PASSED_WHY)


# ------------------------------------------------------------------------------ run verdict
def test_verdict_rejects_when_any_gate_fails_and_names_the_failures() -> None:
    verdict, reason = run_verdict(run_gates({**GOOD, "max_drawdown": 0.3, "best_slice_share": 0.9}, CFG))
    assert verdict == REJECT == "reject"
    assert "drawdown_under_cap" in reason and "no_single_slice_dependency" in reason
    assert "pass_majority_slices" not in reason
    assert reason == "failed: drawdown_under_cap, no_single_slice_dependency"


def test_verdict_of_a_run_that_passes_every_gate_is_pass_not_promote() -> None:
    verdict, reason = run_verdict(run_gates(GOOD, CFG))
    assert verdict == PASS == "pass"
    assert verdict != PROMOTE
    assert "seed_stability" in reason
    assert reason == PASSED_WHY


def test_verdict_uses_only_the_gate_outcomes() -> None:
    passed = [GateResult("a", True, 1.0, 0.5, "r"), GateResult("b", True, 0.1, 0.2, "r")]
    assert run_verdict(passed)[0] == PASS
    assert run_verdict([*passed, GateResult("c", False, math.nan, 0.5, "r")]) == (
        REJECT,
        "failed: c",
    )


HARD_OK = GateResult("hard", True, 1.0, 0.5, "r")
HARD_FAIL = GateResult("hard", False, 0.1, 0.5, "r")
SOFT_OK = GateResult("soft", True, 1.0, 1.0, "r", hard=False)
SOFT_FAIL = GateResult("soft", False, 0.5, 1.0, "r", hard=False)


@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        ([HARD_OK, SOFT_OK], (PASS, PASSED_WHY)),
        ([HARD_OK], (PASS, PASSED_WHY)),
        ([], (PASS, PASSED_WHY)),
        ([HARD_OK, SOFT_FAIL], (RETEST, f"{PASSED_WHY}; missing: soft")),
        ([SOFT_FAIL, SOFT_FAIL], (RETEST, f"{PASSED_WHY}; missing: soft, soft")),
        ([HARD_FAIL, SOFT_OK], (REJECT, "failed: hard")),
        ([HARD_FAIL, SOFT_FAIL], (REJECT, "failed: hard")),  # a hard failure outranks a soft one
    ],
    ids=["all_pass", "hard_only", "no_gates", "soft_fails", "two_soft_fail", "hard_fails", "both_fail"],
)
def test_run_verdict_is_pass_retest_or_reject_by_which_gates_failed(
    gates: list[GateResult], expected: tuple[str, str]
) -> None:
    assert run_verdict(gates) == expected


@pytest.mark.parametrize(
    ("verdict", "passed"),
    [(PASS, True), (RETEST, True), (REJECT, False), (PROMOTE, False), ("", False), ("PASS", False)],
)
def test_passed_run_gates_means_every_hard_gate_passed(verdict: str, passed: bool) -> None:
    assert passed_run_gates(verdict) is passed


def test_passed_run_gates_agrees_with_the_hard_gates_of_run_verdict() -> None:
    for metrics, coverage in ((GOOD, 1.0), (GOOD, 0.5), ({**GOOD, "max_drawdown": 0.9}, 1.0), ({}, 0.0)):
        gates = run_gates(metrics, CFG, coverage)
        assert passed_run_gates(run_verdict(gates)[0]) is all(g.passed for g in gates if g.hard)


def test_run_and_sweep_verdicts_are_distinct_words() -> None:
    assert (PASS, RETEST, REJECT, PROMOTE) == ("pass", "retest", "reject", "promote")


# ------------------------------------------------------------------------------ fitness
def test_fitness_is_the_documented_mean_of_four_clipped_scores() -> None:
    cfg = GatesConfig()
    m = {"consistency": 0.8, "sharpe_mean": 1.0, "profit_factor": 1.5, "max_drawdown": 0.05}
    # consistency 0.8; Sharpe 1/2 = 0.5; PF (1.5-1)/(2-1) = 0.5; drawdown 1 - 0.05/0.2 = 0.75
    assert fitness(m, cfg) == pytest.approx((0.8 + 0.5 + 0.5 + 0.75) / 4)
    assert fitness({**m, "sharpe_mean": 9.0, "profit_factor": math.inf}, cfg) == pytest.approx(
        (0.8 + 1 + 1 + 0.75) / 4
    )
    assert fitness({**m, "max_drawdown": 0.5, "sharpe_mean": -3.0}, cfg) == pytest.approx(
        (0.8 + 0 + 0.5 + 0) / 4
    )
    assert math.isnan(fitness({**m, "profit_factor": math.nan}, cfg))


def test_fitness_scales_come_from_the_config() -> None:
    cfg = GatesConfig(fitness_sharpe_full=4.0, fitness_pf_full=3.0, fitness_drawdown_zero=0.1)
    m = {"consistency": 0.8, "sharpe_mean": 1.0, "profit_factor": 1.5, "max_drawdown": 0.05}
    # Sharpe 1/4; PF (1.5-1)/(3-1) = 0.25; drawdown 1 - 0.05/0.1 = 0.5
    assert fitness(m, cfg) == pytest.approx((0.8 + 0.25 + 0.25 + 0.5) / 4)


# ------------------------------------------------------------------------------ classification
def test_classification_thresholds() -> None:
    cfg = GatesConfig()
    approved = {"consistency": 1.0, "sharpe_mean": 2.0, "profit_factor": 2.0, "max_drawdown": 0.05}
    assert classify(approved, cfg) == APPROVED
    assert classify({**approved, "max_drawdown": 0.10}, cfg) == REVIEW  # over 8%, under 15%
    assert classify({**approved, "profit_factor": 1.2}, cfg) == DROP  # under 1.3
    assert classify({**approved, "consistency": 0.7}, cfg) == REVIEW
    assert classify({**approved, "consistency": math.nan}, cfg) == DROP


# ------------------------------------------------------------------------------ deployment
@pytest.mark.parametrize(
    ("pos", "sd", "expected"),
    [
        (1.0, 0.5, LIVE),
        (0.8, 0.5, LIVE),
        (0.8, 2.5, PAPER),
        (0.6, 1.0, PAPER),
        (0.4, 0.5, RETRAIN),
        (0.6, 9.0, RETRAIN),
        (0.2, 0.1, DROP_MODEL),
        (0.0, 0.1, DROP_MODEL),
    ],
)
def test_deployment_decision_from_walk_forward_consistency(pos: float, sd: float, expected: str) -> None:
    cfg = GatesConfig(live=[0.8, 2.0], paper=[0.6, 3.0], drop_max_positive=0.2)
    assert deployment({"consistency": pos, "sharpe_dispersion": sd}, cfg) == expected


@pytest.mark.parametrize(
    "test",
    [
        {},
        {"consistency": 0.9},
        {"sharpe_dispersion": 0.1},
        {"consistency": math.nan, "sharpe_dispersion": 0.1},
    ],
)
def test_deployment_without_consistency_or_dispersion_is_retrain(test: dict[str, float]) -> None:
    assert deployment(test, GatesConfig()) == RETRAIN
