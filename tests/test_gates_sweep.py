"""Sweep-level decisions on hand-made run records; fitness, classification and deployment rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

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
    GatesConfig,
    classify,
    deployment,
    fitness,
)
from rlpipe.gates.statistics import deflated_sharpe, sharpe_per_period
from rlpipe.gates.sweep import RunRecord, evaluate_sweep

CFG = GatesConfig()
GOOD_TEST = {
    "total": 0.2,
    "sharpe_mean": 2.0,
    "consistency": 0.8,
    "max_drawdown": 0.05,
    "profit_factor": 1.5,
    "sharpe_std": 1.0,
}


def record(
    config: str,
    seed: int,
    *,
    drift: float = 0.001,
    verdict: str = RETEST,
    total: float = 0.2,
    sharpe: float = 2.0,
    cls: str = REVIEW,
    dep: str = PAPER,
    missing: str = "none",
    n: int = 600,
) -> RunRecord:
    rng = np.random.default_rng([seed, ord(config[0])])
    returns = drift + 0.01 * rng.standard_normal(n)
    test = {**GOOD_TEST, "total": total, "sharpe_mean": sharpe}
    return RunRecord(
        f"{config}-{seed}", config, seed, verdict, test, cls, dep, returns, str(seed), config, missing
    )


def test_a_single_seed_can_only_say_retest():
    d = evaluate_sweep([record("a", 1)], CFG)
    assert d.configs[0].verdict == RETEST and "single seed" in d.configs[0].reason
    assert d.champion is None


def test_stable_skilled_configuration_is_promoted_and_its_best_seed_is_champion():
    runs = [record("a", s, total=t) for s, t in ((1, 0.1), (2, 0.3), (3, 0.2))]
    d = evaluate_sweep(runs, CFG)
    (c,) = d.configs
    assert c.verdict == PROMOTE, c.reason
    assert d.champion is runs[1]
    assert [r.seed for r in d.challengers] == [3, 1]  # passing, not best; best first


def test_seed_stability_fails_when_too_few_seeds_pass_or_sharpe_spreads():
    few = [record("a", 1), record("a", 2, verdict=REJECT), record("a", 3, verdict=REJECT)]
    c = evaluate_sweep(few, CFG).configs[0]
    assert c.verdict == REJECT and "seed_stability" in c.reason
    assert c.gates[0].value == pytest.approx(1 / 3)
    spread = [record("a", 1, sharpe=0.0), record("a", 2, sharpe=3.0)]
    c = evaluate_sweep(spread, CFG).configs[0]
    assert not c.gates[0].passed and c.verdict == REJECT


def test_no_seed_passing_rejects_and_nothing_failing_is_promoted():
    runs = [record("a", s, verdict=REJECT) for s in (1, 2, 3)]
    d = evaluate_sweep(runs, CFG)
    assert d.configs[0].verdict == REJECT and d.champion is None and d.challengers == []


def test_deflated_sharpe_is_deflated_by_the_number_of_configurations():
    runs = [record(c, s, drift=0.0008) for c in ("a", "b", "c") for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    assert d.n_trials == 3
    pooled = np.concatenate([r.returns for r in runs if r.config_hash == "a"])
    srs = [sharpe_per_period(np.concatenate([r.returns for r in runs if r.config_hash == h])) for h in "abc"]
    expected = deflated_sharpe(pooled, 3, float(np.var(srs, ddof=1)))
    assert d.configs[0].deflated_sharpe == pytest.approx(expected)
    assert d.configs[0].deflated_sharpe <= deflated_sharpe(pooled, 1, 0.0)


def test_noise_configurations_fail_the_deflated_sharpe_gate():
    runs = [record(c, s, drift=0.0) for c in ("a", "b", "c", "d") for s in (1, 2)]
    d = evaluate_sweep(runs, CFG)
    assert all(c.verdict == REJECT for c in d.configs)
    assert all("deflated_sharpe" in c.reason for c in d.configs)


def test_pbo_does_not_apply_to_one_configuration_and_is_computed_for_several():
    single = evaluate_sweep([record("a", 1), record("a", 2)], CFG)
    pbo = next(g for g in single.configs[0].gates if g.name == "pbo")
    assert pbo.passed and math.isnan(pbo.value) and "not applicable" in pbo.rule and single.pbo is None
    several = evaluate_sweep([record(c, s) for c in ("a", "b") for s in (1, 2)], CFG)
    assert several.pbo is not None and 0.0 <= several.pbo.pbo <= 1.0
    gate = next(g for g in several.configs[0].gates if g.name == "pbo")
    assert gate.value == several.pbo.pbo


def test_pbo_above_its_threshold_rejects_every_configuration():
    strict = GatesConfig(max_pbo=-1.0)
    d = evaluate_sweep([record(c, s) for c in ("a", "b") for s in (1, 2)], strict)
    assert all(c.verdict == REJECT and "pbo" in c.reason for c in d.configs)


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


def test_a_test_set_missing_a_regime_makes_retest_not_promote():
    d = evaluate_sweep([record("a", 1), record("a", 2, missing="bear")], CFG)
    assert d.configs[0].verdict == RETEST and "bear" in d.configs[0].reason and d.champion is None


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


def test_fitness_is_the_documented_mean_of_four_clipped_scores():
    m = {"consistency": 0.8, "sharpe_mean": 1.0, "profit_factor": 1.5, "max_drawdown": 0.05}
    # consistency 0.8; Sharpe 1/2 = 0.5; PF (1.5-1)/(2-1) = 0.5; drawdown 1 - 0.05/0.2 = 0.75
    assert fitness(m, CFG) == pytest.approx((0.8 + 0.5 + 0.5 + 0.75) / 4)
    assert fitness({**m, "sharpe_mean": 9.0, "profit_factor": math.inf}, CFG) == pytest.approx(
        (0.8 + 1 + 1 + 0.75) / 4
    )
    assert fitness({**m, "max_drawdown": 0.5, "sharpe_mean": -3.0}, CFG) == pytest.approx(
        (0.8 + 0 + 0.5 + 0) / 4
    )
    assert math.isnan(fitness({**m, "profit_factor": math.nan}, CFG))


def test_classification_thresholds():
    approved = {"consistency": 1.0, "sharpe_mean": 2.0, "profit_factor": 2.0, "max_drawdown": 0.05}
    assert classify(approved, CFG) == APPROVED
    assert classify({**approved, "max_drawdown": 0.10}, CFG) == REVIEW  # over 8%, under 15%
    assert classify({**approved, "profit_factor": 1.2}, CFG) == DROP  # under 1.3
    assert classify({**approved, "consistency": 0.7}, CFG) == REVIEW
    assert classify({**approved, "consistency": math.nan}, CFG) == DROP


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
def test_deployment_decision_from_walk_forward_consistency(pos, sd, expected):
    cfg = GatesConfig(live=[0.8, 2.0], paper=[0.6, 3.0], drop_max_positive=0.2)
    assert deployment({"consistency": pos, "sharpe_dispersion": sd}, cfg) == expected
