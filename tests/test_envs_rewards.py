"""Reward specs: pnl vs pnl_fees, shaped penalties and the suppression curriculum."""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig, curriculum_strength
from rlpipe.envs.sim import HOLD, LONG, SHORT, BatchSim, SimConfig
from rlpipe.envs.trading_env import TradingEnv

approx = pytest.approx


def flat_market(n: int) -> Market:
    """Close, bid and ask 100 on every bar, range 99..101: every maker order fills, no price move."""
    c = np.full(n, 100.0)
    return Market(
        high=c + 1,
        low=c - 1,
        close=c,
        bid=c.copy(),
        ask=c.copy(),
        features=np.zeros((n, 2), np.float32),
        hours_per_bar=1.0,
        bars_per_year=8766.0,
    )


def sim_for(reward: RewardConfig, n_bars: int = 30, end: int = 20, **env) -> BatchSim:
    cfg = SimConfig(
        kind="management", n_envs=1, stake=0.1, max_stake=0.5, maker_fee=0.001, taker_fee=0.002, **env
    )
    sim = BatchSim(flat_market(n_bars), cfg, reward, 1)
    sim.reset_rows(np.array([0]), np.array([0]), np.array([end]))
    return sim


def test_pnl_ignores_fees_and_pnl_fees_charges_them_on_flat_prices():
    actions = [LONG, HOLD, SHORT, SHORT, LONG, HOLD]
    for kind in ("pnl", "pnl_fees"):
        sim = sim_for(RewardConfig(kind=kind, scale=100.0))
        rewards, fees = [], []
        for a in actions:
            equity0, fees0 = sim.equity[0], sim.fees[0]
            rewards.append(sim.step(np.array([a])).reward[0])
            fees.append((sim.fees[0] - fees0) / equity0 * 100.0)
        if kind == "pnl":
            assert rewards == approx([0.0] * len(actions), abs=1e-12)
        else:
            assert rewards == approx([-f for f in fees], rel=1e-9)
            assert sum(fees) > 0  # there were fills, and they cost


def test_shaped_equals_pnl_fees_while_the_curriculum_suppresses_penalties():
    shaped = RewardConfig(
        kind="shaped",
        hold_penalty=1.0,
        hold_limit_hours=2.0,
        flat_penalty=1.0,
        flat_limit_hours=2.0,
        terminal_penalty=5.0,
        curriculum_rate=1.0,
    )
    a, b = sim_for(shaped), sim_for(RewardConfig(kind="pnl_fees"))
    a.progress = 0.0  # strength 0 at the start of training
    for act in [HOLD, HOLD, HOLD, LONG, HOLD, HOLD, HOLD, HOLD]:
        assert a.step(np.array([act])).reward[0] == approx(b.step(np.array([act])).reward[0], abs=1e-12)


def test_hold_and_flat_penalties_start_after_their_limits():
    cfg = RewardConfig(
        kind="shaped",
        hold_penalty=0.5,
        hold_limit_hours=2.0,
        flat_penalty=0.25,
        flat_limit_hours=3.0,
        curriculum_rate=1.0,
        curriculum_scaling=1.0,
    )
    sim = sim_for(cfg)
    sim.progress = 1.0  # full strength
    flat_terms = [sim.step(np.array([HOLD])).terms["flat_penalty"][0] for _ in range(5)]
    # flat for 1, 2, 3, 4, 5 hours after the steps: penalised once strictly beyond 3 hours
    assert flat_terms == approx([0, 0, 0, -0.25, -0.25])
    hold_terms = [sim.step(np.array([a])).terms["hold_penalty"][0] for a in [LONG, HOLD, HOLD, HOLD]]
    # the long fills at the next bar; it is then 0, 1, 2, 3 hours old: penalised beyond 2 hours
    assert hold_terms == approx([0, 0, 0, -0.5])


def test_terminal_penalty_scales_with_the_episode_loss():
    cfg = RewardConfig(kind="shaped", terminal_penalty=2.0, scale=100.0, curriculum_rate=1.0)
    sim = sim_for(cfg, end=4)
    sim.progress = 1.0
    results = [sim.step(np.array([a])) for a in [LONG, SHORT, LONG, HOLD]]
    assert all(r.terms["terminal_penalty"][0] == 0 for r in results[:-1])
    loss = 1.0 - sim.equity[0]  # fees only, on flat prices
    assert loss > 0
    assert results[-1].terms["terminal_penalty"][0] == approx(-2.0 * loss * 100.0)
    r = results[-1]
    total = r.terms["pnl"] + r.terms["fees"] + r.terms["hold_penalty"] + r.terms["flat_penalty"]
    assert r.reward[0] == approx((total + r.terms["terminal_penalty"])[0])


@pytest.mark.parametrize(
    ("rate", "cycles", "progress", "expected"),
    [
        (1.0, 1, 0.0, 0.0),
        (1.0, 1, 0.5, 0.5),
        (1.0, 1, 1.0, 1.0),
        (2.0, 1, 0.25, 0.5),
        (2.0, 1, 0.75, 1.0),
        (1.0, 2, 0.25, 0.5),
        (1.0, 2, 0.5, 0.0),
        (1.0, 2, 0.75, 0.5),
        (2.0, 2, 0.25, 1.0),
    ],
)
def test_curriculum_ramps_within_each_cycle(rate, cycles, progress, expected):
    cfg = RewardConfig(kind="shaped", curriculum_rate=rate, curriculum_cycles=cycles, curriculum_scaling=1.0)
    assert curriculum_strength(cfg, progress) == approx(expected, abs=1e-6)


def test_every_reward_term_is_in_the_single_env_info():
    market = flat_market(200)
    env = TradingEnv(
        market,
        SimConfig(kind="management", n_envs=1, episode_bars=20, reset_margin_bars=2),
        RewardConfig(kind="shaped", hold_penalty=0.1),
        [(0, 200)],
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(LONG)
    terms = [k for k in info if k.startswith("reward_")]
    assert sorted(terms) == [
        "reward_fees",
        "reward_flat_penalty",
        "reward_hold_penalty",
        "reward_pnl",
        "reward_terminal_penalty",
    ]
    assert reward == approx(sum(info[k] for k in terms))
