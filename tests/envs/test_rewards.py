"""Reward specs: pnl vs pnl_fees, shaped penalties and the suppression curriculum.

`compute_reward` is checked from explicit `StepState`s written by hand, then through the simulator
(which builds the state, and the position clock only for the shaped reward)."""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.envs.market import Market
from rlpipe.envs.rewards import (
    PositionClock,
    RewardConfig,
    StepState,
    compute_reward,
    curriculum_strength,
    needs_clock,
)
from rlpipe.envs.sim import HOLD, LONG, SHORT, BatchSim
from rlpipe.envs.sim_config import SimConfig
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


def hand_state(clock: PositionClock | None) -> StepState:
    """Four envs after one step: rows are (pnl, fees, equity before, equity after, done)."""
    return StepState(
        pnl=np.array([0.01, 0.0, -0.019, 0.0]),
        fees=np.array([0.001, 0.0, 0.001, -0.0005]),  # the last one is a rebate
        equity0=np.array([1.0, 2.0, 1.0, 0.5]),
        equity=np.array([1.009, 2.0, 0.98, 1.05]),
        done=np.array([False, False, True, True]),
        clock=clock,
    )


HAND_CLOCK = PositionClock(
    in_position=np.array([True, False, True, False]),
    held_hours=np.array([5.0, 0.0, 4.0, 0.0]),
    flat_hours=np.array([0.0, 3.0, 0.0, 2.0]),
)


def test_shaped_reward_from_an_explicit_step_state_matches_the_hand_computation():
    cfg = RewardConfig(
        kind="shaped",
        scale=100.0,
        hold_limit_hours=4.0,
        hold_penalty=0.5,
        flat_limit_hours=2.0,
        flat_penalty=0.25,
        terminal_penalty=2.0,
        curriculum_rate=2.0,
    )
    # progress 0.3 at rate 2: strength 0.6
    reward, terms = compute_reward(cfg, hand_state(HAND_CLOCK), progress=0.3)
    assert terms["pnl"] == approx([1.0, 0.0, -1.9, 0.0])  # pnl / equity before x 100
    assert terms["fees"] == approx([-0.1, 0.0, -0.1, 0.1])  # the rebate earns
    # env 0 held 5 h > 4 h; env 2 held exactly 4 h, not beyond the limit
    assert terms["hold_penalty"] == approx([-0.6 * 0.5, 0.0, 0.0, 0.0])
    # env 1 flat 3 h > 2 h; env 3 flat exactly 2 h
    assert terms["flat_penalty"] == approx([0.0, -0.6 * 0.25, 0.0, 0.0])
    # env 2 ended 2% down; env 3 ended up, which is no loss
    assert terms["terminal_penalty"] == approx([0.0, 0.0, -0.6 * 2.0 * 0.02 * 100.0, 0.0])
    assert reward == approx([0.6, -0.15, -4.4, 0.1])


def test_pnl_and_pnl_fees_read_no_position_clock():
    state = hand_state(clock=None)
    pnl, pnl_terms = compute_reward(RewardConfig(kind="pnl"), state, progress=1.0)
    net, net_terms = compute_reward(RewardConfig(kind="pnl_fees"), state, progress=1.0)
    assert pnl == approx([1.0, 0.0, -1.9, 0.0])
    assert net == approx([0.9, 0.0, -2.0, 0.1])
    assert sorted(pnl_terms) == sorted(net_terms) == ["fees", "pnl"]
    assert [needs_clock(RewardConfig(kind=k)) for k in ("pnl", "pnl_fees", "shaped")] == [False, False, True]


def test_shaped_reward_without_a_position_clock_is_refused():
    with pytest.raises(ValueError, match="position clock"):
        compute_reward(RewardConfig(kind="shaped"), hand_state(clock=None), progress=0.5)


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
    for act in [HOLD, HOLD, HOLD, LONG, HOLD, HOLD, HOLD, HOLD]:
        # strength 0 at the start of training
        shaped_reward = a.step(np.array([act]), progress=0.0).reward[0]
        assert shaped_reward == approx(b.step(np.array([act])).reward[0], abs=1e-12)


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
    full = 1.0  # progress at which the penalties have full strength
    flat_terms = [sim.step(np.array([HOLD]), full).terms["flat_penalty"][0] for _ in range(5)]
    # flat for 1, 2, 3, 4, 5 hours after the steps: penalised once strictly beyond 3 hours
    assert flat_terms == approx([0, 0, 0, -0.25, -0.25])
    hold_terms = [sim.step(np.array([a]), full).terms["hold_penalty"][0] for a in [LONG, HOLD, HOLD, HOLD]]
    # the long fills at the next bar; it is then 0, 1, 2, 3 hours old: penalised beyond 2 hours
    assert hold_terms == approx([0, 0, 0, -0.5])


def test_terminal_penalty_scales_with_the_episode_loss():
    cfg = RewardConfig(kind="shaped", terminal_penalty=2.0, scale=100.0, curriculum_rate=1.0)
    sim = sim_for(cfg, end=4)
    results = [sim.step(np.array([a]), progress=1.0) for a in [LONG, SHORT, LONG, HOLD]]
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
