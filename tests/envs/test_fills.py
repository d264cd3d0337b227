"""The fill model and its ledger, checked against hand-computed arithmetic and a reference model.

Every market here is built by hand (a `Market` from small arrays), so each price, each fill and
each fee can be written out. Capital starts at 1.0; an order decided at bar t rests at bar t's
bid (buy) or ask (sell) and fills only if bar t+1 trades through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import ArrayLike

from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import HOLD, LONG, SHORT, BatchSim, StepResult
from rlpipe.envs.sim_config import SimConfig
from rlpipe.types import OBSERVATION_CLIP

approx = pytest.approx


def hand_market(
    close: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    bid: ArrayLike | None = None,
    ask: ArrayLike | None = None,
) -> Market:
    close = np.asarray(close, float)
    return Market(
        high=np.asarray(high, float),
        low=np.asarray(low, float),
        close=close,
        bid=close.copy() if bid is None else np.asarray(bid, float),
        ask=close.copy() if ask is None else np.asarray(ask, float),
        features=np.zeros((len(close), 2), np.float32),
        hours_per_bar=1.0,
        bars_per_year=24 * 365.25,
    )


def flat_market(n: int, bid: float = 99.0, ask: float = 101.0) -> Market:
    """Close 100 every bar, a range of 98..102, so every buy at 99 and every sell at 101 fills."""
    return hand_market([100.0] * n, [102.0] * n, [98.0] * n, [bid] * n, [ask] * n)


def one_env(market: Market, end: int | None = None, init_side: int = 0, **cfg: Any) -> BatchSim:
    sim = BatchSim(market, SimConfig(n_envs=1, **cfg), RewardConfig(kind="pnl_fees"), 1)
    last = market.n_bars - 1 if end is None else end
    sim.reset_rows(np.array([0]), np.array([0]), np.array([last]), np.array([init_side]))
    return sim


def step(sim: BatchSim, action: int) -> StepResult:
    return sim.step(np.array([action]))


# ------------------------------------------------------------------------------ fill rules
@pytest.mark.parametrize(("next_low", "fills"), [(98.99, True), (99.0, False), (99.5, False)])
def test_maker_buy_fills_only_when_next_low_trades_below_the_bid(next_low: float, fills: bool) -> None:
    m = hand_market(
        close=[100, 100, 100],
        high=[101, 101, 101],
        low=[99.5, next_low, 99.5],
        bid=[99, 99, 99],
        ask=[101] * 3,
    )
    sim = one_env(m, stake=1.0, max_stake=1.0, maker_fee=0.001)
    res = step(sim, LONG)
    assert int(res.fills[0]) == int(fills)
    if fills:
        q = 1.0 / 99.0  # stake 1.0 x equity 1.0, at the bid of bar 0
        fee = q * 99.0 * 0.001  # = 0.001
        assert sim.qty[0] == approx(q, rel=1e-15)
        assert sim.slot_px[0, 0] == 99.0
        assert sim.cash[0] == approx(1.0 - q * 99.0 - fee, abs=1e-15)
        assert sim.fees[0] == approx(0.001, rel=1e-12)
        assert sim.equity[0] == approx(-0.001 + q * 100.0, rel=1e-15)
    else:
        assert (sim.qty[0], sim.cash[0], sim.fees[0], sim.equity[0]) == (0.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize(("next_high", "fills"), [(101.01, True), (101.0, False), (100.2, False)])
def test_maker_sell_fills_only_when_next_high_trades_above_the_ask(next_high: float, fills: bool) -> None:
    m = hand_market(
        close=[100, 100, 100],
        high=[100.5, next_high, 100.5],
        low=[99, 99, 99],
        bid=[99] * 3,
        ask=[101] * 3,
    )
    sim = one_env(m, stake=1.0, max_stake=1.0, maker_fee=0.001)
    step(sim, SHORT)
    if fills:
        q = 1.0 / 101.0
        assert sim.qty[0] == approx(-q, rel=1e-15)
        assert sim.slot_px[0, 0] == 101.0
        assert sim.cash[0] == approx(1.0 + q * 101.0 - 0.001, rel=1e-15)
        assert sim.equity[0] == approx(1.0 + 1.0 - 0.001 - q * 100.0, rel=1e-15)
    else:
        assert (sim.qty[0], sim.cash[0], sim.fees[0]) == (0.0, 1.0, 0.0)


def test_hold_never_fills_and_leaves_the_ledger_untouched() -> None:
    sim = one_env(flat_market(5), stake=0.5, max_stake=1.0)
    for _ in range(4):
        res = step(sim, HOLD)
        assert res.fills[0] == 0
    assert (sim.cash[0], sim.qty[0], sim.fees[0], sim.equity[0], sim.trades[0]) == (
        1.0,
        0.0,
        0.0,
        1.0,
        0,
    )


# ------------------------------------------------------------------------------ hand ledger
def test_baseline_round_trips_match_the_hand_ledger() -> None:
    # bar:        0      1      2      3      4      5
    close = [100.0, 100.0, 102.0, 104.0, 106.0, 107.0]
    bid = [99.5, 99.5, 101.5, 103.5, 105.5, 106.5]
    ask = [100.5, 100.5, 102.5, 104.5, 106.5, 107.5]
    low = [99.0, 99.0, 101.0, 103.0, 104.0, 106.0]
    high = [101.0, 100.8, 102.4, 104.6, 106.6, 108.0]
    maker, taker = 0.001, 0.002
    sim = one_env(
        hand_market(close, high, low, bid, ask),
        kind="baseline",
        stake=1.0,
        max_stake=1.0,
        maker_fee=maker,
        taker_fee=taker,
    )

    # Step 0 -> bar 1: LONG rests at bid[0] = 99.5; low[1] = 99.0 < 99.5, so it fills.
    res = step(sim, LONG)
    q1 = 1.0 / 99.5
    fee1 = q1 * 99.5 * maker  # 0.001
    cash = 1.0 - q1 * 99.5 - fee1  # -0.001
    equity1 = cash + q1 * 100.0
    assert res.fills[0] == 1
    assert sim.cash[0] == approx(cash, abs=1e-15)
    assert sim.qty[0] == approx(q1, rel=1e-15)
    assert sim.fees[0] == approx(fee1, rel=1e-12)
    assert sim.equity[0] == approx(equity1, rel=1e-15)
    assert res.reward[0] == approx((equity1 - 1.0) / 1.0 * 100, rel=1e-12)
    assert res.terms["fees"][0] == approx(-fee1 * 100, rel=1e-12)

    # Step 1 -> bar 2: LONG again, but one stake of 1.0 already fills the cap of 1.0.
    res = step(sim, LONG)
    equity2 = cash + q1 * 102.0
    assert res.fills[0] == 0
    assert sim.qty[0] == approx(q1, rel=1e-15)
    assert sim.equity[0] == approx(equity2, rel=1e-15)
    assert res.reward[0] == approx((equity2 - equity1) / equity1 * 100, rel=1e-12)

    # Step 2 -> bar 3: SHORT rests at ask[2] = 102.5; high[3] = 104.6 > 102.5: closes the long.
    res = step(sim, SHORT)
    exit1 = q1 * 102.5 * maker
    cash = cash + q1 * 102.5 - exit1
    net1 = q1 * (102.5 - 99.5) - fee1 - exit1
    equity3 = cash
    assert res.fills[0] == 1
    assert sim.qty[0] == 0.0
    assert sim.cash[0] == approx(cash, rel=1e-14)
    assert sim.equity[0] == approx(equity3, rel=1e-14)
    assert sim.fees[0] == approx(fee1 + exit1, rel=1e-12)
    assert sim.realised[0] == approx(q1 * 3.0, rel=1e-12)
    assert (sim.trades[0], sim.wins[0]) == (1, 1)
    assert sim.gross_win[0] == approx(net1, rel=1e-12)
    assert sim.gross_loss[0] == 0.0
    assert sim.last_close_t[0] == 3

    # Step 3 -> bar 4: SHORT rests at ask[3] = 104.5; high[4] = 106.6 > 104.5: opens a short of
    # 1.0 x equity3.
    res = step(sim, SHORT)
    q2 = 1.0 * equity3 / 104.5
    fee2 = q2 * 104.5 * maker
    cash = cash + q2 * 104.5 - fee2
    equity4 = cash - q2 * 106.0
    assert res.fills[0] == 1
    assert sim.qty[0] == approx(-q2, rel=1e-14)
    assert sim.cash[0] == approx(cash, rel=1e-14)
    assert sim.equity[0] == approx(equity4, rel=1e-12)

    # Step 4 -> bar 5 = the episode's last bar: HOLD; the open short is bought back as a taker
    # at close[5] = 107 with the taker fee.
    res = step(sim, HOLD)
    exit2 = q2 * 107.0 * taker
    cash = cash - q2 * 107.0 - exit2
    net2 = -q2 * (107.0 - 104.5) - fee2 - exit2
    assert res.truncated[0] and not res.terminated[0]
    assert res.fills[0] == 0  # the forced taker close is not a maker fill
    assert sim.qty[0] == 0.0
    assert sim.cash[0] == approx(cash, rel=1e-12)
    assert sim.equity[0] == approx(cash, rel=1e-12)
    assert sim.fees[0] == approx(fee1 + exit1 + fee2 + exit2, rel=1e-12)
    assert sim.realised[0] == approx(q1 * 3.0 - q2 * 2.5, rel=1e-12)
    assert (sim.trades[0], sim.wins[0]) == (2, 1)
    assert sim.gross_win[0] == approx(net1, rel=1e-12)
    assert sim.gross_loss[0] == approx(-net2, rel=1e-12)
    assert sim.fill_count[0] == 3
    # Flat at the end: the whole PnL is the closed trades' net.
    assert sim.equity[0] - 1.0 == approx(net1 + net2, abs=1e-12)


def test_episode_end_closes_a_long_as_taker_at_the_close() -> None:
    m = hand_market(
        close=[100, 100, 110],
        high=[101, 101, 111],
        low=[99, 98, 109],
        bid=[99.5] * 3,
        ask=[100.5] * 3,
    )
    sim = one_env(m, stake=0.5, max_stake=1.0, maker_fee=0.0, taker_fee=0.0006)
    step(sim, LONG)  # fills at 99.5: q = 0.5 / 99.5
    q = 0.5 / 99.5
    assert sim.cash[0] == approx(0.5, rel=1e-15)
    res = step(sim, HOLD)  # bar 2 is the last bar: sell q at 110, pay 0.06% of it
    taker_fee = q * 110 * 0.0006
    assert res.truncated[0]
    assert sim.qty[0] == 0.0
    assert sim.fees[0] == approx(taker_fee, rel=1e-12)
    assert sim.equity[0] == approx(0.5 + q * 110 - taker_fee, rel=1e-14)
    assert sim.gross_win[0] == approx(q * 10.5 - taker_fee, rel=1e-12)


def test_maker_fill_on_the_last_step_is_closed_by_the_taker_in_the_same_step() -> None:
    m = flat_market(3)
    sim = one_env(m, stake=0.1, max_stake=1.0, maker_fee=-0.0001, taker_fee=0.0005)
    step(sim, HOLD)
    res = step(sim, SHORT)  # opens a short at 101 on the last step, then the end closes it at 100
    q = 0.1 / 101
    rebate = q * 101 * -0.0001
    taker = q * 100 * 0.0005
    assert res.fills[0] == 1 and res.truncated[0]
    assert sim.qty[0] == 0.0
    assert sim.fees[0] == approx(rebate + taker, rel=1e-12)
    assert sim.equity[0] == approx(1.0 + q * 101 - rebate - q * 100 - taker, rel=1e-14)
    assert (sim.trades[0], sim.wins[0]) == (1, 1)


def test_random_initial_position_opens_one_stake_at_the_start_close_without_fee() -> None:
    m = flat_market(4)
    sim = one_env(m, init_side=-1, stake=0.25, max_stake=1.0, maker_fee=0.001)
    assert sim.qty[0] == approx(-0.25 / 100, rel=1e-15)
    assert sim.cash[0] == approx(1.25, rel=1e-15)
    assert sim.equity[0] == approx(1.0, rel=1e-15)
    assert sim.fees[0] == 0.0
    step(sim, LONG)  # buy at 99 closes the short opened at 100: a win of 0.0025 * 1 minus the fee
    q = 0.0025
    assert sim.qty[0] == 0.0
    assert sim.realised[0] == approx(q * 1.0, rel=1e-12)
    assert sim.gross_win[0] == approx(q * 1.0 - q * 99 * 0.001, rel=1e-12)


def test_equity_at_or_below_zero_terminates_the_episode() -> None:
    m = hand_market(
        close=[100, 100, 250, 250],
        high=[101, 102, 251, 251],
        low=[99] * 4,
        bid=[99] * 4,
        ask=[101] * 4,
    )
    sim = one_env(m, stake=1.0, max_stake=1.0, maker_fee=0.0)
    step(sim, SHORT)  # short 1/101 units at 101
    res = step(sim, HOLD)  # price 250: equity = 1 + 1 - 250/101 < 0
    assert sim.equity[0] == approx(2.0 - 250 / 101, rel=1e-14)
    assert res.terminated[0] and not res.truncated[0]


# ------------------------------------------------------------------------------ management
def test_management_stacks_stakes_up_to_the_cap() -> None:
    maker = -0.0001  # a rebate: fees are negative and add to cash
    sim = one_env(flat_market(8), kind="management", stake=0.1, max_stake=0.3, maker_fee=maker)
    equity = 1.0
    cash = 1.0
    qs = []
    for k in range(3):
        res = step(sim, LONG)  # each buy rests at 99 and fills (low 98)
        q = 0.1 * equity / 99.0
        cash -= q * 99.0 + q * 99.0 * maker
        qs.append(q)
        equity = cash + sum(qs) * 100.0
        assert res.fills[0] == 1
        assert sim.slot_qty[0, k] == approx(q, rel=1e-14)
        assert sim.slot_t[0, k] == k + 1
        assert sim.equity[0] == approx(equity, rel=1e-14)
        assert sim.info_arrays()["open_stake"][0] == approx(0.1 * (k + 1))
    res = step(sim, LONG)  # a fourth stake would exceed max_stake = 0.3
    assert res.fills[0] == 0
    assert sim.qty[0] == approx(sum(qs), rel=1e-14)
    assert sim.fees[0] == approx(sum(q * 99.0 * maker for q in qs), rel=1e-12)
    assert sim.fees[0] < 0
    # The observation's size variable is open stake / max stake = 1.
    pos = sim.position_vars()[0]
    assert (pos[0], pos[1], pos[2]) == (1.0, 0.0, approx(1.0))


def test_close_mode_one_closes_the_oldest_slot() -> None:
    sim = one_env(
        flat_market(10),
        kind="management",
        stake=0.1,
        max_stake=0.3,
        maker_fee=0.0,
        close_mode="one",
    )
    for _ in range(3):
        step(sim, LONG)
    q1, q2, q3 = sim.slot_qty[0].copy()
    step(sim, SHORT)  # closes slot 0 (opened at bar 1) at 101
    assert sim.slot_qty[0, 0] == 0.0
    assert sim.qty[0] == approx(q2 + q3, rel=1e-14)
    assert sim.realised[0] == approx(q1 * 2.0, rel=1e-12)
    assert (sim.trades[0], sim.wins[0]) == (1, 1)
    step(sim, LONG)  # reopens in the empty slot 0, now the newest (bar 5)
    q4 = sim.slot_qty[0, 0]
    assert sim.slot_t[0].tolist() == [5, 2, 3]
    step(sim, SHORT)  # the oldest is now slot 1 (bar 2), not slot 0
    assert sim.slot_qty[0].tolist() == [q4, 0.0, q3]
    assert sim.qty[0] == approx(q3 + q4, rel=1e-14)
    assert sim.trades[0] == 2
    assert sim.last_close_t[0] == 0  # still in a position: never flat since the reset


def test_close_mode_all_closes_every_slot() -> None:
    sim = one_env(
        flat_market(6),
        kind="management",
        stake=0.1,
        max_stake=0.3,
        maker_fee=0.0002,
        close_mode="all",
    )
    for _ in range(3):
        step(sim, LONG)
    slots = sim.slot_qty[0].copy()
    fees_before = sim.fees[0]
    res = step(sim, SHORT)
    exit_fees = slots.sum() * 101 * 0.0002
    assert res.fills[0] == 1
    assert sim.qty[0] == 0.0 and (sim.slot_qty[0] == 0).all()
    assert sim.fees[0] == approx(fees_before + exit_fees, rel=1e-12)
    assert sim.realised[0] == approx(slots.sum() * 2.0, rel=1e-12)
    assert (sim.trades[0], sim.wins[0]) == (3, 3)
    assert sim.last_close_t[0] == 4
    # An opposite fill only closes; it does not also open the other side.
    assert sim.info_arrays()["open_stake"][0] == 0.0


@pytest.mark.parametrize("kind", ["baseline", "management"])
@pytest.mark.parametrize("maker_fee", [0.0002, -0.0001, 0.0])
def test_flat_prices_lose_exactly_the_fees(kind: str, maker_fee: float) -> None:
    # bid = ask = close = 100 on every bar and every order fills (range 99..101): no price can
    # be earned, so the ledger's change is exactly minus the fees (plus the rebates).
    n = 40
    m = hand_market([100.0] * n, [101.0] * n, [99.0] * n)
    sim = one_env(
        m,
        kind=kind,
        stake=0.2,
        max_stake=0.6,
        maker_fee=maker_fee,
        taker_fee=0.0006,
        close_mode="one",
    )
    actions = np.random.default_rng(0).choice([LONG, LONG, SHORT, HOLD], size=n - 1)
    actions[-3:-1] = LONG  # end the episode in a position, so the taker close happens
    actions[-1] = HOLD
    expected_fees = 0.0
    for a in actions:
        notional_before = np.abs(sim.qty[0]) * 100.0
        equity0 = sim.equity[0]
        res = step(sim, int(a))
        if res.truncated[0]:  # the last bar: buy back / sell what is open, as a taker
            expected_fees += notional_before * 0.0006
        elif res.fills[0] and np.abs(sim.qty[0]) * 100.0 > notional_before:
            expected_fees += 0.2 * equity0 * maker_fee  # opened a stake of 0.2 x equity
        elif res.fills[0]:
            expected_fees += (notional_before - np.abs(sim.qty[0]) * 100.0) * maker_fee  # closed
        assert sim.equity[0] == approx(1.0 - sim.fees[0], abs=1e-14)
    assert notional_before > 0
    assert sim.fill_count[0] > 10
    assert sim.realised[0] == approx(0.0, abs=1e-15)
    assert sim.fees[0] == approx(expected_fees, rel=1e-9)
    assert sim.equity[0] == approx(1.0 - expected_fees, abs=1e-14)
    assert sim.gross_win[0] - sim.gross_loss[0] == approx(-expected_fees, abs=1e-14)
    if maker_fee < 0 and kind == "management":
        assert sim.wins[0] > 0  # a rebate-only round trip is a (tiny) win


# ------------------------------------------------------------------------------ low prices
def test_closing_every_slot_of_a_low_priced_asset_leaves_no_phantom_position() -> None:
    # At a price of 1e-5 one stake is ~1e4 units; closing three slots one at a time leaves
    # float dust in `qty` above the absolute 1e-12 cleanup, so the env thinks it is still long.
    n = 12
    close = [1e-5 * (1 + 0.01 * k) for k in range(n)]
    m = hand_market(close, [c * 1.02 for c in close], [c * 0.98 for c in close])
    sim = one_env(m, kind="management", stake=0.1, max_stake=0.3, close_mode="one", maker_fee=0.0002)
    for a in [LONG, LONG, LONG, SHORT, SHORT, SHORT]:
        assert step(sim, a).fills[0] == 1
    assert (sim.slot_qty[0] == 0).all()
    assert sim.qty[0] == 0.0  # flat: no slot is open
    assert sim.position_vars()[0][:3].tolist() == [0.0, 0.0, 0.0]  # neither long nor short
    assert sim.last_close_t[0] == 6
    res = step(sim, SHORT)  # a flat env must be able to open a short
    assert res.fills[0] == 1
    assert sim.qty[0] < 0


# ------------------------------------------------------------------------------ reference model
@dataclass
class Ledger:
    """A plain-Python ledger of the documented rules, slot by slot, for one environment."""

    stake: float
    max_stake: float
    close_all: bool
    maker: float
    taker: float
    cash: float = 1.0
    fees: float = 0.0
    realised: float = 0.0
    trades: int = 0
    wins: int = 0
    gross_win: float = 0.0
    gross_loss: float = 0.0
    side: int = 0
    slots: list = field(default_factory=list)  # [qty, price, entry fee, bar]

    @property
    def qty(self) -> float:
        return self.side * sum(s[0] for s in self.slots)

    def open(self, direction: int, px: float, equity: float, t: int, fee_rate: float | None = None) -> None:
        q = self.stake * equity / px
        fee = q * px * (self.maker if fee_rate is None else fee_rate)
        self.cash -= direction * q * px + fee
        self.fees += fee
        self.side = direction
        self.slots.append([q, px, fee, t])

    def close(self, px: float, rate: float, everything: bool) -> None:
        chosen = list(self.slots) if everything else [min(self.slots, key=lambda s: s[3])]
        for s in chosen:
            q, entry, entry_fee, _ = s
            exit_fee = q * px * rate
            gross = self.side * q * (px - entry)
            net = gross - entry_fee - exit_fee
            self.cash += self.side * q * px - exit_fee
            self.fees += exit_fee
            self.realised += gross
            self.trades += 1
            self.wins += net > 0
            if net > 0:
                self.gross_win += net
            else:
                self.gross_loss -= net
            self.slots.remove(s)
        if not self.slots:
            self.side = 0


def price_path(draw: st.DrawFn) -> Market:
    n = draw(st.integers(4, 24))
    scale = draw(st.sampled_from([0.05, 1.0, 100.0, 3e4]))  # low prices: see the phantom test
    rets = np.array(draw(st.lists(st.floats(-0.04, 0.04), min_size=n, max_size=n)))
    wicks = np.array(draw(st.lists(st.floats(0.0, 0.02), min_size=2 * n, max_size=2 * n))).reshape(2, n)
    half = draw(st.floats(0.0, 0.004))
    close = scale * np.exp(np.cumsum(rets))
    open_ = np.concatenate([[scale], close[:-1]])
    high = np.maximum(open_, close) * (1 + wicks[0])
    low = np.minimum(open_, close) * (1 - wicks[1])
    return hand_market(close, high, low, close * (1 - half), close * (1 + half))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple:
    market = price_path(draw)
    stake = draw(st.sampled_from([0.1, 0.25, 0.5, 1.0]))
    cfg = SimConfig(
        kind=draw(st.sampled_from(["baseline", "management"])),
        n_envs=1,
        stake=stake,
        max_stake=stake * draw(st.integers(1, 4)),
        close_mode=draw(st.sampled_from(["one", "all"])),
        maker_fee=draw(st.floats(-0.0003, 0.001)),
        taker_fee=draw(st.floats(0.0, 0.002)),
    )
    rows = draw(st.integers(1, 3))
    actions = np.array(
        draw(
            st.lists(
                st.lists(st.integers(0, 2), min_size=rows, max_size=rows),
                min_size=market.n_bars - 1,
                max_size=market.n_bars - 1,
            )
        )
    )
    init = np.array(draw(st.lists(st.integers(-1, 1), min_size=rows, max_size=rows)))
    return market, cfg, actions, init


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_ledger_invariants_hold_on_random_paths_and_actions(scenario: tuple) -> None:
    m, cfg, actions, init = scenario
    n_rows = actions.shape[1]
    sim = BatchSim(m, cfg, RewardConfig(kind="pnl_fees"), n_rows)
    end = m.n_bars - 1
    sim.reset_rows(np.arange(n_rows), np.zeros(n_rows, np.int64), np.full(n_rows, end), init)
    refs = [
        Ledger(cfg.stake, cfg.max_stake, cfg.close_mode == "all", cfg.maker_fee, cfg.taker_fee)
        for _ in range(n_rows)
    ]
    for i, ref in enumerate(refs):
        if init[i]:
            ref.open(int(init[i]), m.close[0], 1.0, 0, fee_rate=0.0)
    alive = np.ones(n_rows, bool)
    for t, a in enumerate(actions):
        if not alive.all():
            break
        equity0 = sim.equity.copy()
        res = sim.step(a)
        for i, ref in enumerate(refs):
            # --- the reference: fill only if bar t+1 traded through the resting price
            buy, sell = a[i] == LONG, a[i] == SHORT
            px = m.bid[t] if buy else m.ask[t]
            traded_through = (buy and m.low[t + 1] < m.bid[t]) or (sell and m.high[t + 1] > m.ask[t])
            direction = 1 if buy else -1
            filled = False
            if traded_through and ref.side == -direction:
                ref.close(px, cfg.maker_fee, ref.close_all)
                filled = True
            elif traded_through and len(ref.slots) * cfg.stake + cfg.stake <= cfg.max_stake + 1e-9:
                ref.open(direction, px, float(equity0[i]), t + 1)
                filled = True
            if t + 1 == end and ref.slots:
                fees_before = ref.fees
                ref.close(m.close[end], cfg.taker_fee, True)
                assert ref.fees - fees_before >= 0  # a taker close never earns a rebate
            equity = ref.cash + ref.qty * m.close[t + 1]
            # --- the simulator agrees with it
            assert int(res.fills[i]) == int(filled)
            if filled and buy:
                assert px > m.low[t + 1]  # no fill at a price the next bar did not trade through
            if filled and sell:
                assert px < m.high[t + 1]
            assert sim.cash[i] == approx(ref.cash, rel=1e-9, abs=1e-12)
            assert sim.qty[i] == approx(ref.qty, rel=1e-9, abs=1e-12 * scale_of(m))
            assert sim.fees[i] == approx(ref.fees, rel=1e-9, abs=1e-12)
            assert sim.realised[i] == approx(ref.realised, rel=1e-9, abs=1e-12)
            assert sim.equity[i] == approx(equity, rel=1e-9, abs=1e-12)
            assert (int(sim.trades[i]), int(sim.wins[i])) == (ref.trades, ref.wins)
            assert sim.gross_win[i] == approx(ref.gross_win, rel=1e-9, abs=1e-12)
            assert sim.gross_loss[i] == approx(ref.gross_loss, rel=1e-9, abs=1e-12)
        # --- invariants of the simulator itself
        close = m.close[sim.t]
        assert np.allclose(sim.equity, sim.cash + sim.qty * close, rtol=1e-12, atol=1e-12)
        assert np.allclose(sim.equity, 1.0 + sim.realised + sim.unrealised() - sim.fees, rtol=1e-9, atol=1e-9)
        assert (sim.info_arrays()["open_stake"] <= cfg.max_stake + 1e-9).all()
        assert ((sim.slot_qty > 0).sum(axis=1) <= cfg.slots).all()
        assert np.allclose(np.abs(sim.qty), sim.slot_qty.sum(axis=1), rtol=1e-9, atol=0)
        assert ((sim.qty == 0) == ((sim.slot_qty > 0).sum(axis=1) == 0)).all()  # no phantom position
        obs = sim.observe()
        assert obs.dtype == np.float32 and np.isfinite(obs).all() and np.abs(obs).max() <= OBSERVATION_CLIP
        assert np.allclose(res.reward, (sim.equity - equity0) / equity0 * 100, rtol=1e-9, atol=1e-9)
        alive &= ~res.terminated
        if t + 1 == end:
            assert res.truncated[alive].all()
            assert (sim.qty[alive] == 0).all()  # every episode ends flat
            assert np.allclose(
                (sim.gross_win - sim.gross_loss)[alive],
                (sim.equity - 1.0)[alive],
                rtol=1e-9,
                atol=1e-12,
            )


def scale_of(m: Market) -> float:
    """Units per unit of capital at the path's lowest price (the size of a quantity)."""
    return float(1.0 / m.low.min())
