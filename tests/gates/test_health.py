"""The health rule: a record drawn like the test slices is healthy, a flipped drift degrades it,
too few bars only watch, a deep drawdown degrades at once, and the seed fixes the figures."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from omegaconf import OmegaConf

from rlpipe.cli.schemas import schema_of
from rlpipe.errors import ConfigError
from rlpipe.gates.health import DEGRADED, HEALTHY, WATCH, Expectation, HealthConfig, bootstrap_means, judge
from tests.support.project import CONF

MU, SIGMA, HOURS = 2e-4, 3e-3, 8760.0


def equity(rets: np.ndarray) -> np.ndarray:
    return np.concatenate([[1.0], np.cumprod(1.0 + rets)])


def drawn(n: int, mu: float, seed: int) -> np.ndarray:
    """An equity curve of n bars whose returns follow an AR(1) around `mu` (autocorrelated, like
    an agent's per-bar returns)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, SIGMA, n)
    for t in range(1, n):
        noise[t] += 0.2 * noise[t - 1]
    return equity(mu + noise)


@pytest.fixture(scope="module")
def expect() -> Expectation:
    """Five test slices of 1,440 hourly bars with a positive drift."""
    return Expectation.from_curves([drawn(1440, MU, s) for s in range(5)], HOURS)


def test_expectation_holds_the_slices_returns_and_worst_drawdown():
    curves = [np.array([1.0, 1.1, 0.99, 1.2]), np.array([1.0, 0.8, 0.9])]
    e = Expectation.from_curves(curves, 252.0)
    assert [len(s) for s in e.slices] == [3, 2]
    assert e.worst_drawdown == pytest.approx(0.2)
    assert e.mean_return == pytest.approx(np.mean([0.1, -0.1, 1.2 / 0.99 - 1.0, -0.2, 0.125]))


def test_a_record_drawn_like_the_test_slices_is_healthy(expect):
    health = judge(expect, 1000.0 * drawn(2000, MU, 99), HealthConfig(), seed=0)
    assert health.verdict == HEALTHY and health.bars == 2000
    assert health.figures["realised_mean"] > health.figures["mean_lower_bound"]
    assert health.figures["mean_lower_bound"] < MU < health.figures["expected_mean"] + 1e-4
    assert "within expectation" in health.reason


def test_a_record_whose_drift_flips_sign_is_degraded(expect):
    health = judge(expect, drawn(2000, -MU, 99), HealthConfig(), seed=0)
    assert health.verdict == DEGRADED
    assert (
        health.figures["realised_mean"] < health.figures["mean_lower_bound"] < health.figures["expected_mean"]
    )
    assert any("bootstrap lower bound" in r for r in health.reasons)


def test_before_min_bars_a_bad_mean_only_watches(expect):
    health = judge(expect, drawn(100, -MU, 99), HealthConfig(min_bars=168), seed=0)
    assert health.verdict == WATCH and health.bars == 100
    assert health.reasons == ("100 bar(s) < health.min_bars=168: too few to judge the mean",)


def test_a_drawdown_beyond_the_multiple_degrades_even_before_min_bars(expect):
    limit = 1.5 * expect.worst_drawdown
    crash = np.concatenate([np.ones(10), np.full(5, 1.0 - limit - 0.01)])
    health = judge(expect, crash, HealthConfig(min_bars=168), seed=0)
    assert health.verdict == DEGRADED
    assert health.figures["realised_drawdown"] == pytest.approx(limit + 0.01)
    assert health.figures["drawdown_limit"] == pytest.approx(limit)


def test_a_drawdown_deeper_than_any_test_slice_but_within_the_limit_watches(expect):
    worst = expect.worst_drawdown
    rise = equity(np.full(400, MU))
    dip = np.concatenate(
        [rise, rise[-1] * np.array([1.0 - 1.2 * worst]), rise[-1] * equity(np.full(400, MU))]
    )
    health = judge(expect, dip, HealthConfig(), seed=0)
    assert health.verdict == WATCH
    assert any("deeper than the worst test slice" in r for r in health.reasons)


def test_equity_more_than_ten_percent_below_expectation_only_watches(expect):
    record = equity(np.full(2000, expect.mean_return - 1e-4))  # inside the bootstrap bound, 18% short
    health = judge(expect, record, HealthConfig(), seed=0)
    expected = (1.0 + expect.mean_return) ** 2000
    assert health.figures["shortfall"] == pytest.approx(1.0 - record[-1] / expected)
    assert health.figures["shortfall"] > 0.10
    assert health.figures["realised_mean"] > health.figures["mean_lower_bound"]
    assert health.verdict == WATCH
    assert health.reasons[0].startswith(f"equity {health.figures['shortfall']:.1%} below")


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_bounds(expect):
    record = drawn(500, MU, 7)
    a, b = judge(expect, record, HealthConfig(), 3), judge(expect, record, HealthConfig(), 3)
    assert a == b
    c = judge(expect, record, HealthConfig(), 4)
    assert c.figures["mean_lower_bound"] != a.figures["mean_lower_bound"]


def test_block_bootstrap_means_centre_on_the_test_mean_with_the_spread_of_n_bars(expect):
    means = bootstrap_means(expect, 1000, HealthConfig(resamples=4000), seed=1)
    assert means.shape == (4000,)
    assert np.mean(means) == pytest.approx(expect.mean_return, abs=2e-5)
    assert 0.8 * SIGMA / np.sqrt(1000) < np.std(means) < 2.0 * SIGMA / np.sqrt(1000)


def test_bad_health_values_name_the_key():
    with pytest.raises(ConfigError, match=r"health\.confidence"):
        HealthConfig(confidence=1.5)
    with pytest.raises(ConfigError, match=r"health\.drawdown_multiple"):
        HealthConfig(drawdown_multiple=0.5)


def test_the_health_config_file_holds_the_documented_defaults():
    node = OmegaConf.merge(
        OmegaConf.structured(schema_of(HealthConfig)), OmegaConf.load(CONF / "health/default.yaml")
    )
    values = {k: v for k, v in OmegaConf.to_container(node).items() if k != "_target_"}
    assert values == dataclasses.asdict(HealthConfig())
