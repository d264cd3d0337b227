"""Batched backtest on hand-made markets: hand-computed ledgers, baselines, batching, aggregates."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from rlpipe.envs.market import Market
from rlpipe.envs.sim import HOLD, LONG, SHORT
from rlpipe.evaluation.backtest import AGENT, SliceResult, aggregates, backtest, curves_frame
from tests.support.backtests import HOUR, MAKER, T0, TAKER, always, by, cfg, hours, market, rising, window

# Helpers.


def random_walk(n: int = 60, seed: int = 3) -> Market:
    """A seeded walk whose bars range wide enough that most maker orders fill."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return market(close, close * 1.01, close * 0.99)


def flip(obs: np.ndarray) -> np.ndarray:
    """Buy when not long, sell when long (with zero features obs column 0 is the long flag)."""
    return np.where(obs[:, 0] > 0, SHORT, LONG).astype(np.int64)


def assert_same_metrics(a: dict[str, float], b: dict[str, float]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15, nan_ok=True), k


# Passive baselines.
def test_flat_baseline_never_trades_and_keeps_its_capital() -> None:
    results = backtest(rising(), cfg(), [window("w", 0, 6)], None, seed=0)
    flat = by(results, "flat")
    np.testing.assert_array_equal(flat.equity, np.ones(6))
    m = flat.metrics
    assert (
        m["total"],
        m["trades"],
        m["max_drawdown"],
        m["fees"],
        m["turnover"],
        m["exposure"],
    ) == (0, 0, 0, 0, 0, 0)
    assert m["sharpe"] == 0.0
    assert math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"])


def test_without_a_policy_only_the_baselines_run_one_row_per_window() -> None:
    results = backtest(rising(), cfg(), [window("a", 0, 4), window("b", 3, 8)], None, seed=0)
    assert [(r.policy, r.slice) for r in results] == [
        ("buy_and_hold", "a"),
        ("buy_and_hold", "b"),
        ("flat", "a"),
        ("flat", "b"),
        ("random", "a"),
        ("random", "b"),
    ]


def test_buy_and_hold_matches_a_hand_computed_ledger_on_a_rising_path() -> None:
    # Bars 0..4 of close 100..104, bid = close - 0.05, low = close - 1.5. Full stake (1.0).
    # Bar 0: buy rests at bid0 = 99.95; bar 1's low 99.5 < 99.95 -> filled.
    #   q = 1 / 99.95 units, maker fee = q * 99.95 * 0.0002 = 0.0002, cash = 1 - 1 - 0.0002.
    # Later buys fill too but the stake cap (1.0) refuses a second slot.
    # Bar 4 (last): the open position is closed as a taker at close 104:
    #   exit fee = q * 104 * 0.0006; cash = -0.0002 + q * 104 * (1 - 0.0006).
    results = backtest(rising(), cfg(stake=1.0, max_stake=1.0), [window("w", 0, 5)], None, seed=0)
    bh = by(results, "buy_and_hold")
    q = 1 / 99.95
    curve = [1.0] + [-MAKER + q * c for c in (101, 102, 103)] + [-MAKER + q * 104 * (1 - TAKER)]
    assert bh.equity == pytest.approx(curve, rel=1e-12)
    m = bh.metrics
    assert m["total"] == pytest.approx(104 / 99.95 * (1 - TAKER) - MAKER - 1, rel=1e-12)
    assert m["fees"] == pytest.approx(MAKER + q * 104 * TAKER, rel=1e-12)
    assert m["pnl_before_fees"] == pytest.approx(104 / 99.95 - 1, rel=1e-12)
    assert (m["trades"], m["wins"], m["losses"], m["win_rate"]) == (1, 1, 0, 1.0)
    assert m["profit_factor"] == math.inf  # a win and no loss
    assert m["max_drawdown"] == 0.0  # every bar is a new high, the taker exit included
    assert m["turnover"] == pytest.approx(q * 99.95 + q * 104)
    assert m["exposure"] == pytest.approx(3 / 4)  # long across bars 1->2, 2->3, 3->4 of 4 steps
    rets = [curve[i + 1] / curve[i] - 1 for i in range(4)]
    assert m["sharpe"] == pytest.approx(
        statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365.25 * 24)
    )


def test_buy_and_hold_scales_in_by_stake_using_current_equity() -> None:
    # stake 0.5, cap 1.0, bars 0..3 of close 100..103.
    # Bar 0 -> 1: buy at 99.95 for 0.5 x equity 1.0: q1 = 0.5 / 99.95, fee 0.5 * 0.0002.
    # Bar 1 -> 2: buy at 100.95 for 0.5 x equity at bar 1: q2 = 0.5 * e1 / 100.95.
    # Bar 2 -> 3: the cap refuses a third slot; bar 3 is the end: taker close of q1 + q2 at 103.
    results = backtest(rising(), cfg(stake=0.5, max_stake=1.0), [window("w", 0, 4)], None, seed=0)
    q1 = 0.5 / 99.95
    cash = 1.0 - 0.5 - 0.5 * MAKER
    e1 = cash + q1 * 101
    q2 = 0.5 * e1 / 100.95
    cash -= 0.5 * e1 * (1 + MAKER)
    e2 = cash + (q1 + q2) * 102
    e3 = cash + (q1 + q2) * 103 * (1 - TAKER)
    bh = by(results, "buy_and_hold")
    assert bh.equity == pytest.approx([1.0, e1, e2, e3], rel=1e-12)
    assert bh.metrics["total"] == pytest.approx(e3 - 1, rel=1e-12)
    assert bh.metrics["fees"] == pytest.approx(
        0.5 * MAKER + 0.5 * e1 * MAKER + (q1 + q2) * 103 * TAKER, rel=1e-12
    )
    assert (bh.metrics["trades"], bh.metrics["wins"]) == (2, 2)


def test_maker_buy_never_fills_when_no_bar_trades_through_the_bid() -> None:
    # low = close - 0.01: the next low (close + 0.99) never reaches the resting bid (close - 0.05)
    results = backtest(rising(dip=0.01), cfg(), [window("w", 0, 8)], None, seed=0)
    bh = by(results, "buy_and_hold")
    np.testing.assert_array_equal(bh.equity, np.ones(8))
    assert (bh.metrics["total"], bh.metrics["trades"], bh.metrics["fees"]) == (0, 0, 0)


def test_constant_long_agent_gets_exactly_the_buy_and_hold_result() -> None:
    windows = [window("a", 0, 5), window("b", 2, 8)]
    for sim_cfg in (cfg(), cfg(stake=1.0, max_stake=1.0)):
        for mk in (rising(), random_walk()):
            results = backtest(mk, sim_cfg, windows, always(LONG), seed=0)
            for w in ("a", "b"):
                agent, bh = by(results, AGENT, w), by(results, "buy_and_hold", w)
                np.testing.assert_array_equal(agent.equity, bh.equity)
                assert_same_metrics(agent.metrics, bh.metrics)


def test_constant_hold_agent_gets_exactly_the_flat_result() -> None:
    results = backtest(random_walk(), cfg(), [window("w", 5, 30)], always(HOLD), seed=0)
    np.testing.assert_array_equal(by(results, AGENT).equity, by(results, "flat").equity)
    assert_same_metrics(by(results, AGENT).metrics, by(results, "flat").metrics)


def test_random_baseline_is_reproducible_for_a_seed_and_differs_for_another() -> None:
    mk, windows = random_walk(), [window("a", 0, 30), window("b", 30, 60)]
    first = backtest(mk, cfg(), windows, flip, seed=11)
    again = backtest(mk, cfg(), windows, flip, seed=11)
    other = backtest(mk, cfg(), windows, flip, seed=12)
    for w in ("a", "b"):
        np.testing.assert_array_equal(by(first, "random", w).equity, by(again, "random", w).equity)
        assert_same_metrics(by(first, "random", w).metrics, by(again, "random", w).metrics)
        assert by(first, "random", w).metrics["trades"] > 0
        assert not np.array_equal(by(first, "random", w).equity, by(other, "random", w).equity)
        # the seed drives the random baseline only
        for policy in (AGENT, "buy_and_hold", "flat"):
            np.testing.assert_array_equal(by(first, policy, w).equity, by(other, policy, w).equity)


# Curves: bar times, fees and turnover.
def test_buy_and_hold_fee_and_turnover_curves_follow_the_hand_computed_ledger() -> None:
    # The ledger of test_buy_and_hold_matches_a_hand_computed_ledger_on_a_rising_path: the maker
    # entry fills into bar 1; the taker exit at bar 4's close.
    results = backtest(rising(), cfg(stake=1.0, max_stake=1.0), [window("w", 0, 5)], None, seed=0)
    bh = by(results, "buy_and_hold")
    q = 1 / 99.95
    assert bh.fees == pytest.approx([0, MAKER, MAKER, MAKER, MAKER + q * 104 * TAKER], rel=1e-12)
    entry = q * 99.95
    assert bh.turnover == pytest.approx([0, entry, entry, entry, entry + q * 104], rel=1e-12)
    np.testing.assert_array_equal(by(results, "flat").fees, np.zeros(5))
    np.testing.assert_array_equal(by(results, "flat").turnover, np.zeros(5))


def test_fee_and_turnover_curves_end_at_the_slice_metrics_for_every_policy() -> None:
    windows = [window("short", 10, 17), window("long", 0, 60, role="train"), window("mid", 20, 45)]
    results = backtest(random_walk(), cfg(), windows, flip, seed=0)
    for r in results:
        assert len(r.fees) == len(r.turnover) == len(r.equity), (r.slice, r.policy)
        assert r.fees[0] == r.turnover[0] == 0.0
        assert np.all(np.diff(r.fees) >= 0) and np.all(np.diff(r.turnover) >= 0)
        assert r.fees[-1] == r.metrics["fees"], (r.slice, r.policy)
        assert r.turnover[-1] == r.metrics["turnover"], (r.slice, r.policy)
    assert by(results, AGENT, "long").fees[-1] > 0  # the policy did pay fees


def test_results_and_curves_carry_the_utc_time_of_every_bar_of_their_slice() -> None:
    mk = random_walk()
    index = hours(mk.n_bars)
    windows = [window("short", 10, 17), window("long", 0, 60, role="train"), window("mid", 20, 45)]
    results = backtest(mk, cfg(), windows, flip, seed=0, index=index)
    curves = curves_frame(results)
    assert list(curves.columns) == [
        "slice", "role", "regime", "policy", "bar", "time", "equity", "fees", "turnover",
    ]  # fmt: skip
    assert isinstance(curves["time"].dtype, pd.DatetimeTZDtype) and str(curves["time"].dt.tz) == "UTC"
    for r in results:
        (w,) = [w for w in windows if w.slice.name == r.slice]
        assert r.time is not None
        pd.testing.assert_index_equal(r.time, index[w.lo : w.hi])
        assert (r.time[0], r.time[-1]) == (w.slice.start, w.slice.end)
        part = curves[(curves["slice"] == r.slice) & (curves["policy"] == r.policy)]
        assert list(part["time"]) == list(index[w.lo : w.hi])
        np.testing.assert_array_equal(part["equity"], r.equity)
        np.testing.assert_array_equal(part["fees"], r.fees)
        np.testing.assert_array_equal(part["turnover"], r.turnover)
    one_by_one = pd.concat(  # the frame, curve by curve (dtypes included)
        [pd.DataFrame({"slice": r.slice, "role": r.role, "regime": r.regime, "policy": r.policy,
                       "bar": np.arange(len(r.equity)), "time": r.time, "equity": r.equity, "fees": r.fees,
                       "turnover": r.turnover}) for r in results],
        ignore_index=True,
    )  # fmt: skip
    pd.testing.assert_frame_equal(curves, one_by_one, check_exact=True)


def test_bar_times_change_no_metric_and_no_curve() -> None:
    mk, windows = random_walk(), [window("a", 0, 30), window("b", 25, 60, role="train")]
    plain = backtest(mk, cfg(), windows, flip, seed=5)
    dated = backtest(mk, cfg(), windows, flip, seed=5, index=hours(mk.n_bars))
    for a, b in zip(plain, dated, strict=True):
        assert (a.slice, a.policy) == (b.slice, b.policy)
        assert a.time is None and b.time is not None
        np.testing.assert_equal(a.metrics, b.metrics)  # exactly (NaN equals NaN)
        for curve in ("equity", "fees", "turnover"):
            np.testing.assert_array_equal(getattr(a, curve), getattr(b, curve))
    assert curves_frame(plain)["time"].isna().all()


def test_a_naive_index_is_read_as_utc_and_a_short_one_is_refused() -> None:
    mk = random_walk()
    naive = hours(mk.n_bars).tz_localize(None)
    (r, *_) = backtest(mk, cfg(), [window("a", 3, 9)], flip, seed=0, index=naive)
    assert r.time is not None and r.time[0] == T0 + 3 * HOUR
    with pytest.raises(ValueError, match="59 timestamps for a market of 60 bars"):
        backtest(mk, cfg(), [window("a", 3, 9)], flip, seed=0, index=hours(mk.n_bars - 1))


# Batching.
def test_windows_of_different_lengths_get_curves_as_long_as_their_bars() -> None:
    windows = [window("short", 10, 17), window("long", 0, 60, role="train"), window("mid", 20, 45)]
    results = backtest(random_walk(), cfg(), windows, flip, seed=0)
    assert len(results) == 4 * len(windows)
    for r in results:
        (w,) = [w for w in windows if w.slice.name == r.slice]
        assert len(r.equity) == w.bars
        assert r.equity[0] == 1.0
        assert np.all(np.isfinite(r.equity))
        assert (r.role, r.regime, r.start, r.end) == (
            w.slice.role,
            w.slice.regime,
            str(w.slice.start),
            str(w.slice.end),
        )


def test_each_window_in_a_batch_gets_the_same_result_as_when_run_alone() -> None:
    mk = random_walk()
    windows = [window("short", 10, 17), window("long", 0, 60, role="train"), window("mid", 20, 45)]
    baselines = ("buy_and_hold", "flat")  # the random baseline shares one stream across the batch
    together = backtest(mk, cfg(), windows, flip, seed=0, baselines=baselines)
    for w in windows:
        alone = backtest(mk, cfg(), [w], flip, seed=0, baselines=baselines)
        for policy in (AGENT, *baselines):
            a, b = by(together, policy, w.slice.name), by(alone, policy)
            np.testing.assert_allclose(a.equity, b.equity, rtol=1e-13)
            assert_same_metrics(a.metrics, b.metrics)
    assert by(together, AGENT, "short").metrics["trades"] > 0  # the policy did trade


def test_agent_observes_the_features_of_its_own_windows_bars() -> None:
    n = 40
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    bar_feature = (np.arange(n) / 100.0)[:, None]  # feature = bar index / 100
    mk = market(close, close * 1.01, close * 0.99, features=bar_feature)
    windows = [window("a", 3, 9), window("b", 20, 40)]
    seen: list[np.ndarray] = []

    def policy(obs: np.ndarray) -> np.ndarray:
        seen.append(obs[:, 0].copy())
        return np.full(len(obs), LONG, np.int64)

    backtest(mk, cfg(), windows, policy, seed=0, baselines=())
    assert len(seen) == 19  # the longest window has 20 bars: 19 decisions
    for step, feats in enumerate(seen):
        for i, w in enumerate(windows):
            if step < w.bars - 1:  # still inside its window: decides at bar lo + step
                assert feats[i] == pytest.approx((w.lo + step) / 100.0)


# Aggregates.
def result(
    slice_: str, policy: str, total: float, dd: float = 0.0, sharpe: float = 0.0, role: str = "test"
) -> SliceResult:
    return SliceResult(
        slice_,
        role,
        "bull",
        policy,
        {"total": total, "max_drawdown": dd, "sharpe": sharpe},
        np.ones(3),
    )


def hand_results() -> list[SliceResult]:
    return [
        result("s1", AGENT, 0.10, dd=0.05, sharpe=1.0),
        result("s2", AGENT, -0.04, dd=0.12, sharpe=-0.5),
        result("s3", AGENT, 0.02, dd=0.03, sharpe=2.0),
        result("tr", AGENT, 5.00, dd=0.90, sharpe=9.0, role="train"),
        result("s1", "buy_and_hold", 0.05),
        result("s2", "buy_and_hold", -0.02),
        result("s3", "buy_and_hold", 0.03),
        result("s1", "flat", 0.0),
        result("s2", "random", 0.5, dd=0.99),
    ]


def test_aggregates_summarise_the_agents_test_slices() -> None:
    agg = aggregates(hand_results(), role="test")
    assert agg["consistency"] == pytest.approx(2 / 3)  # s1, s3 positive
    assert (agg["positive_slices"], agg["slices"]) == (2, 3)
    assert agg["worst_slice_total"] == pytest.approx(-0.04)
    assert agg["total"] == pytest.approx(0.10 - 0.04 + 0.02)
    assert agg["mean_total"] == pytest.approx(0.08 / 3)
    assert agg["best_slice_share"] == pytest.approx(0.10 / 0.08)  # best s1 over the net 0.08
    # the training slice's 0.90 is not a test slice
    assert agg["max_drawdown"] == pytest.approx(0.12)
    assert agg["sharpe_mean"] == pytest.approx((1.0 - 0.5 + 2.0) / 3)
    assert agg["sharpe_std"] == pytest.approx(statistics.stdev([1.0, -0.5, 2.0]))
    # excess over buy-and-hold: s1 +0.05, s2 -0.02, s3 -0.01 -> 1 of 3
    assert agg["beats_buy_and_hold"] == pytest.approx(1 / 3)
    assert agg["excess_total"] == pytest.approx(0.05 - 0.02 - 0.01)  # the edge over buy-and-hold


def test_aggregates_of_another_role_use_only_that_roles_slices() -> None:
    agg = aggregates(hand_results(), role="train")
    assert (
        agg["consistency"],
        agg["slices"],
        agg["worst_slice_total"],
        agg["best_slice_share"],
    ) == (1.0, 1, 5.0, 1.0)
    assert agg["sharpe_std"] == 0.0  # one slice
    assert math.isnan(agg["beats_buy_and_hold"])  # no buy-and-hold row for the training slice
    assert math.isnan(agg["excess_total"])


def test_aggregates_without_agent_slices_of_the_role_are_empty() -> None:
    assert aggregates(hand_results(), role="validation") == {}
    assert aggregates([r for r in hand_results() if r.policy != AGENT]) == {}


def test_aggregate_best_slice_share_is_nan_when_the_net_total_is_not_positive() -> None:
    agg = aggregates([result("a", AGENT, 0.05), result("b", AGENT, -0.07)])
    assert agg["consistency"] == 0.5
    assert math.isnan(agg["best_slice_share"])


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_aggregate_max_drawdown_is_nan_when_any_slice_drawdown_is_nan(
    order: tuple[int, int],
) -> None:
    # A missing drawdown must fail drawdown_under_cap, whatever the slice order.
    rows = [result("a", AGENT, 0.05, dd=math.nan), result("b", AGENT, 0.03, dd=0.02)]
    agg = aggregates([rows[i] for i in order])
    assert math.isnan(agg["max_drawdown"])
