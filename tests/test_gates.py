"""Per-run gates at and around their thresholds, missing/NaN metrics, and the run verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlpipe.gates import GateResult, GatesConfig, run_gates, run_verdict
from rlpipe.gates.rules import PROMOTE, REJECT, RETEST

CFG = GatesConfig(min_positive_fraction=0.5, max_drawdown_cap=0.15, max_best_slice_share=0.6)
GOOD = {"consistency": 0.8, "max_drawdown": 0.05, "best_slice_share": 0.3, "beats_buy_and_hold": 0.8}
EPS = 1e-9


def gate(metrics: dict[str, float], name: str, cfg: GatesConfig = CFG) -> GateResult:
    (g,) = [g for g in run_gates(metrics, cfg) if g.name == name]
    return g


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


def test_default_thresholds() -> None:
    assert (
        GatesConfig().min_positive_fraction,
        GatesConfig().max_drawdown_cap,
        GatesConfig().max_best_slice_share,
    ) == (
        0.5,
        0.15,
        0.6,
    )


@pytest.mark.parametrize(
    ("consistency", "passed"),
    [(0.5 - EPS, False), (0.5, False), (0.5 + EPS, True), (2 / 3, True), (1.0, True), (0.0, False)],
)
def test_majority_of_slices_must_be_strictly_above_min_positive_fraction(
    consistency: float, passed: bool
) -> None:
    # half the slices positive is not a majority
    assert gate({**GOOD, "consistency": consistency}, "pass_majority_slices").passed is passed


@pytest.mark.parametrize(
    ("drawdown", "passed"),
    [(0.0, True), (0.15 - EPS, True), (0.15, True), (0.15 + EPS, False), (0.9, False)],
)
def test_drawdown_passes_at_or_under_the_cap(drawdown: float, passed: bool) -> None:
    assert gate({**GOOD, "max_drawdown": drawdown}, "drawdown_under_cap").passed is passed


@pytest.mark.parametrize(
    ("share", "passed"),
    [(0.2, True), (0.6 - EPS, True), (0.6, True), (0.6 + EPS, False), (1.0, False), (1.5, False)],
)
def test_best_slice_share_passes_at_or_under_the_maximum(share: float, passed: bool) -> None:
    assert gate({**GOOD, "best_slice_share": share}, "no_single_slice_dependency").passed is passed


def test_thresholds_come_from_the_config() -> None:
    strict = GatesConfig(
        min_positive_fraction=0.8,
        max_drawdown_cap=0.04,
        max_best_slice_share=0.25,
        min_beats_buy_and_hold=0.9,
    )
    assert [g.passed for g in run_gates(GOOD, strict) if g.hard] == [False, False, False, False]
    assert [g.threshold for g in run_gates(GOOD, strict) if g.hard] == [0.8, 0.04, 0.25, 0.9]
    assert "0.8" in gate(GOOD, "pass_majority_slices", strict).rule


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


def test_empty_aggregates_fail_every_gate() -> None:
    assert [g.passed for g in run_gates({}, CFG) if g.hard] == [False, False, False, False]
    assert run_verdict(run_gates({}, CFG))[0] == REJECT


def test_gate_values_are_plain_floats_and_passed_plain_bools() -> None:
    gates = run_gates({k: np.float64(v) for k, v in GOOD.items()}, CFG)
    assert all(type(g.passed) is bool and type(g.value) is float for g in gates)


def test_verdict_rejects_when_any_gate_fails_and_names_the_failures() -> None:
    verdict, reason = run_verdict(run_gates({**GOOD, "max_drawdown": 0.3, "best_slice_share": 0.9}, CFG))
    assert verdict == REJECT == "reject"
    assert "drawdown_under_cap" in reason and "no_single_slice_dependency" in reason
    assert "pass_majority_slices" not in reason


def test_verdict_of_a_run_that_passes_every_gate_is_retest_not_promote() -> None:
    verdict, reason = run_verdict(run_gates(GOOD, CFG))
    assert verdict == RETEST == "retest"
    assert verdict != PROMOTE
    assert "seed_stability" in reason


def test_verdict_uses_only_the_gate_outcomes() -> None:
    passed = [GateResult("a", True, 1.0, 0.5, "r"), GateResult("b", True, 0.1, 0.2, "r")]
    assert run_verdict(passed)[0] == RETEST
    assert run_verdict([*passed, GateResult("c", False, math.nan, 0.5, "r")]) == (
        REJECT,
        "failed: c",
    )


@pytest.mark.parametrize(("bh", "passed"), [(0.5, False), (0.5 + EPS, True), (0.4, False), (1.0, True)])
def test_beating_buy_and_hold_needs_a_strict_majority(bh: float, passed: bool) -> None:
    assert gate({**GOOD, "beats_buy_and_hold": bh}, "beats_buy_and_hold").passed is passed


def test_missing_regime_coverage_makes_retest_not_reject_and_says_why() -> None:
    gates = run_gates(GOOD, CFG, coverage=2 / 3)
    cov = next(g for g in gates if g.name == "regime_coverage")
    assert not cov.passed and not cov.hard and cov.value == pytest.approx(2 / 3)
    verdict, reason = run_verdict(gates)
    assert verdict == RETEST and "regime_coverage" in reason
    no_check = GatesConfig(require_regime_coverage=False)
    assert "regime_coverage" not in [g.name for g in run_gates(GOOD, no_check, coverage=0.0)]
