"""The batched simulator's own contract: a reward is optional, progress is an argument of the step,
and the position clock it hands the shaped reward counts hours held and flat.

(The fill model and the ledger are checked in envs/test_fills.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import HOLD, LONG, SHORT, BatchSim
from rlpipe.envs.sim_config import SimConfig

approx = pytest.approx

SHAPED = RewardConfig(
    kind="shaped",
    hold_limit_hours=3.0,
    hold_penalty=0.5,
    flat_limit_hours=2.0,
    flat_penalty=0.25,
    terminal_penalty=1.0,
    curriculum_rate=1.0,
)


def random_walk(n: int = 120, seed: int = 4, hours_per_bar: float = 1.0) -> Market:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    wiggle = np.abs(rng.normal(0, 0.004, n)) * close
    return Market(
        high=close + wiggle,
        low=close - wiggle,
        close=close,
        bid=close * (1 - 1e-4),
        ask=close * (1 + 1e-4),
        features=rng.normal(0, 1, (n, 3)).astype(np.float32),
        hours_per_bar=hours_per_bar,
        bars_per_year=8766.0 / hours_per_bar,
    )


def started(market: Market, reward: RewardConfig | None, n: int = 6, **cfg: object) -> BatchSim:
    sim_cfg = SimConfig(
        **{"kind": "management", "n_envs": n, "stake": 0.1, "max_stake": 0.3, "maker_fee": 0.0002, **cfg}
    )
    sim = BatchSim(market, sim_cfg, reward, n)
    starts = np.arange(n) * 5
    sim.reset_rows(np.arange(n), starts, starts + 40, np.array([0, 1, -1] * (n // 3)))
    return sim


@pytest.mark.parametrize("reward", [RewardConfig(kind="pnl_fees"), SHAPED], ids=["pnl_fees", "shaped"])
def test_sim_without_a_reward_keeps_the_same_ledger_and_reports_zero_reward(reward: RewardConfig) -> None:
    market = random_walk()
    bare, rewarded = started(market, None), started(market, reward)
    actions = np.random.default_rng(0).integers(0, 3, (40, 6))
    total_fills = 0
    for step, a in enumerate(actions):
        res, ref = bare.step(a), rewarded.step(a, progress=0.7)
        assert res.reward.tolist() == [0.0] * 6 and res.reward.dtype == np.float64
        assert res.terms == {}
        assert np.array_equal(res.fills, ref.fills), f"fills at step {step}"
        assert np.array_equal(res.done, ref.done) and np.array_equal(res.truncated, ref.truncated)
        for key in ("equity", "cash", "qty", "fees", "realised", "slot_qty", "slot_t"):
            assert np.array_equal(getattr(bare, key), getattr(rewarded, key)), f"{key} at step {step}"
        assert np.array_equal(bare.observe(), rewarded.observe())
        total_fills += int(res.fills.sum())
    assert total_fills > 20  # the batch traded: the ledgers compared are not trivially equal
    assert res.done.all()  # every episode ran to its end (the forced close included)


def test_step_progress_sets_the_strength_of_the_shaped_penalties() -> None:
    market = random_walk()
    hold = np.full(6, HOLD)
    penalties = {}
    for progress in (0.0, 0.5, 1.0):
        sim = started(market, SHAPED)
        terms = [sim.step(hold, progress=progress).terms["flat_penalty"] for _ in range(4)]
        penalties[progress] = np.array([t[[0, 3]] for t in terms])  # the rows that start flat
    # flat 1, 2, 3, 4 hours: penalised beyond 2 hours, by 0.25 x strength (rate 1: strength = progress)
    assert penalties[1.0] == approx(np.array([[0, 0], [0, 0], [-0.25, -0.25], [-0.25, -0.25]]))
    assert penalties[0.5] == approx(np.array([[0, 0], [0, 0], [-0.125, -0.125], [-0.125, -0.125]]))
    assert not penalties[0.0].any()
    assert not hasattr(sim, "progress")  # the curriculum is the caller's, not the simulator's


def test_position_clock_counts_hours_in_position_from_the_oldest_stake_and_hours_flat() -> None:
    flat = Market(
        high=np.full(20, 102.0),
        low=np.full(20, 98.0),
        close=np.full(20, 100.0),
        bid=np.full(20, 99.0),
        ask=np.full(20, 101.0),
        features=np.zeros((20, 1), np.float32),
        hours_per_bar=2.0,
        bars_per_year=4383.0,
    )
    sim = BatchSim(flat, SimConfig(kind="management", n_envs=1, stake=0.1, max_stake=0.3), SHAPED, 1)
    sim.reset_rows(np.array([0]), np.array([0]), np.array([19]))
    clocks = []
    for a in [HOLD, HOLD, LONG, HOLD, LONG, HOLD, SHORT, HOLD]:  # every maker order fills here
        sim.step(np.array([a]))
        c = sim.position_clock()
        clocks.append((bool(c.in_position[0]), float(c.held_hours[0]), float(c.flat_hours[0])))
    assert clocks == [
        (False, 0.0, 2.0),
        (False, 0.0, 4.0),
        (True, 0.0, 6.0),  # opened at bar 3
        (True, 2.0, 8.0),
        (True, 4.0, 10.0),  # a second stake: the clock keeps the oldest one's age
        (True, 6.0, 12.0),
        (False, 0.0, 0.0),  # closed at bar 7 (held is 0 when every slot is empty)
        (False, 0.0, 2.0),
    ]
