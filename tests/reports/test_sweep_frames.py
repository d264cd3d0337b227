"""The notebook's computations on hand-made frames: what varied, the seeds' spread per configuration,
the test slices chained in time and their rolling Sharpe, checked against values worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rlpipe.evaluation.metrics import returns, sharpe
from rlpipe.reports.sweep_frames import (
    mean_spread,
    seed_dispersion,
    stitched_by_configuration,
    stitched_equity,
    stitched_rolling_sharpe,
    varied,
    varied_text,
)

HOURLY = 365.25 * 24


def test_varied_names_only_the_params_that_differ_with_their_values_in_run_order():
    params = [
        {"seed": "6", "reward.kind": "pnl", "timesteps": "1000", "hydra.job": "a", "agent.gamma": "0.99"},
        {
            "seed": "1",
            "reward.kind": "pnl_fees",
            "timesteps": "1000",
            "hydra.job": "b",
            "agent.gamma": "0.99",
        },
        {"seed": "6", "reward.kind": "pnl_fees", "timesteps": "1000", "hydra.job": "c"},
    ]
    assert varied(params) == {
        "agent.gamma": ["0.99", "-"],  # a run without the param differs from the others
        "hydra.job": ["a", "b", "c"],
        "reward.kind": ["pnl", "pnl_fees"],
        "seed": ["6", "1"],
    }
    assert varied(params, leave_out=("seed", "hydra.", "agent.gamma")) == {"reward.kind": ["pnl", "pnl_fees"]}
    same = [{"seed": "1", "reward.kind": "pnl"}, {"seed": "1", "reward.kind": "pnl"}]
    assert varied(same) == {} and varied([]) == {}


def test_varied_text_says_what_varied_and_cuts_a_long_list():
    assert varied_text({}) == "nothing"
    assert varied_text({"seed": ["1", "2"], "reward.kind": ["pnl", "pnl_fees"]}) == (
        "seed (1, 2); reward.kind (pnl, pnl_fees)"
    )
    many = [str(s) for s in range(1, 13)]
    assert varied_text({"seed": many}) == "seed (1, 2, 3, 4, 5, 6, ... 12 values)"


def runs() -> pd.DataFrame:
    rows = [
        ("r1", 1, "pnl", "FINISHED", 1.0, 0.10),
        ("r2", 2, "pnl", "FINISHED", 2.0, 0.30),
        ("r3", 3, "pnl", "FINISHED", 4.5, -0.10),
        ("r4", 1, "shaped", "FINISHED", -1.0, 0.05),
        ("r5", 2, "shaped", "FAILED", math.nan, math.nan),
    ]
    columns = ["run_id", "seed", "reward", "status", "validation_sharpe_mean", "test_total"]
    return pd.DataFrame(rows, columns=columns)


def test_seed_dispersion_is_mean_std_and_range_of_the_finished_seeds_per_configuration():
    d = seed_dispersion(runs(), ["validation_sharpe_mean", "test_total"], by=["reward"])
    assert list(d["reward"]) == ["pnl", "shaped"] and list(d["configuration"]) == ["pnl", "shaped"]
    assert list(d["seeds"]) == [3, 1]  # the failed run is no seed of the spread
    pnl, shaped = d.iloc[0], d.iloc[1]
    assert pnl["validation_sharpe_mean_mean"] == pytest.approx(2.5)
    assert pnl["validation_sharpe_mean_std"] == pytest.approx(math.sqrt(((1.5**2) + 0.5**2 + 2**2) / 2))
    assert (pnl["test_total_min"], pnl["test_total_max"]) == (-0.10, 0.30)
    assert pnl["test_total_mean"] == pytest.approx(0.1)
    assert math.isnan(shaped["test_total_std"]) and shaped["test_total_mean"] == 0.05  # one seed: no spread
    assert seed_dispersion(runs().iloc[:0], ["test_total"], by=["reward"]).empty
    assert list(mean_spread(d, "test_total", "{:+.1%}")) == [
        "+10.0% ± 20.0% (-10.0% to +30.0%)",
        "+5.0% (one seed)",
    ]
    assert list(mean_spread(d.assign(test_total_mean=math.nan), "test_total")) == ["n/a", "n/a"]


def curves() -> pd.DataFrame:
    """Run a: slice s2 (recorded first) starts after s1; run b has one slice."""
    t = pd.date_range("2024-01-01", periods=8, freq="h", tz="UTC")
    rows = []
    for name, start, eq in (("s2", 4, [1.0, 1.5, 1.2, 1.2]), ("s1", 0, [1.0, 1.1, 0.99, 1.1])):
        rows += [("a", name, "bull", "agent", i, t[start + i], e) for i, e in enumerate(eq)]
        rows += [("a", name, "bull", "buy_and_hold", i, t[start + i], 1.0) for i in range(len(eq))]
    rows += [("b", "s1", "bull", "agent", i, t[i], e) for i, e in enumerate([1.0, 0.9, 0.9, 0.99])]
    return pd.DataFrame(rows, columns=["run_id", "slice", "regime", "policy", "bar", "time", "equity"])


def test_stitched_equity_chains_each_runs_slices_in_time_from_where_the_last_ended():
    st = stitched_equity(curves())
    a = st[st["run_id"] == "a"]
    # s1 first (earlier bars), then s2's three returns on top of s1's end (1.1)
    assert list(a["slice"]) == ["s1"] * 4 + ["s2"] * 3
    np.testing.assert_allclose(a["equity"], [1.0, 1.1, 0.99, 1.1, 1.65, 1.32, 1.32])
    np.testing.assert_allclose(a["ret"].iloc[1:], [0.1, -0.1, 0.11 / 0.99, 0.5, -0.2, 0.0])
    assert math.isnan(a["ret"].iloc[0]) and list(a["step"]) == list(range(7))
    assert a["time"].is_monotonic_increasing and a["time"].iloc[4] == pd.Timestamp(
        "2024-01-01 05:00", tz="UTC"
    )
    b = st[st["run_id"] == "b"]
    np.testing.assert_allclose(b["equity"], [1.0, 0.9, 0.9, 0.99])
    hold = stitched_equity(curves(), policy="buy_and_hold")
    assert set(hold["run_id"]) == {"a"} and (hold["equity"] == 1.0).all()
    assert list(stitched_equity(curves().iloc[:0]).columns) == list(st.columns)


def test_stitched_equity_by_configuration_is_the_mean_of_its_seeds_with_their_range():
    st = stitched_equity(curves())
    by = stitched_by_configuration(
        st, pd.DataFrame({"run_id": ["a", "b"], "reward": ["pnl", "pnl"]}), ["reward"]
    )
    assert list(by["step"]) == list(range(7)) and set(by["configuration"]) == {"pnl"}
    np.testing.assert_allclose(by["equity"].iloc[:4], [1.0, 1.0, 0.945, 1.045])
    np.testing.assert_allclose(by["low"].iloc[:4], [1.0, 0.9, 0.9, 0.99])
    np.testing.assert_allclose(by["high"].iloc[:4], [1.0, 1.1, 0.99, 1.1])
    assert list(by["seeds"]) == [2, 2, 2, 2, 1, 1, 1]  # run b has no second slice


def test_rolling_sharpe_of_the_stitched_equity_is_the_sharpe_of_each_window_of_returns():
    rng = np.random.default_rng(3)
    t = pd.date_range("2024-01-01", periods=200, freq="h", tz="UTC")
    eq = [np.cumprod(1 + rng.normal(0.001, 0.01, 100)), np.cumprod(1 + rng.normal(0.0, 0.01, 100))]
    eq = [e / e[0] for e in eq]
    rows = [
        ("a", f"f{k}", "bull", "agent", i, t[100 * k + i], e) for k in (0, 1) for i, e in enumerate(eq[k])
    ]
    st = stitched_equity(
        pd.DataFrame(rows, columns=["run_id", "slice", "regime", "policy", "bar", "time", "equity"])
    )
    rolled = stitched_rolling_sharpe(st, {"a": HOURLY}, window=24)
    rets = returns(st["equity"].to_numpy())
    assert len(rolled) == len(rets) - 24 + 1 and (rolled["window"] == 24).all()
    for i in (0, 80, len(rolled) - 1):  # 80: a window across the two slices
        assert rolled["sharpe"].iloc[i] == pytest.approx(sharpe(rets[i : i + 24], HOURLY), rel=1e-9)
        assert rolled["step"].iloc[i] == i + 24  # a window's value belongs to its last bar
    default = stitched_rolling_sharpe(st, {"a": HOURLY})
    assert (default["window"] == 99).all()  # seven days of hourly bars is 168: at most half the 199 bars
    assert stitched_rolling_sharpe(st, {}, window=24)["sharpe"].isna().all()  # no bars per year recorded
