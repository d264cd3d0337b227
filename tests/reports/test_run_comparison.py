"""The notebook's tables of a sweep's runs: the axes, the seeds x configurations grid, the runs
featured, agent against buy-and-hold per regime (on a real smoke sweep, 2 seeds x 2 reward specs
through the CLI), and the drawdown of curves made by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlpipe.reports.run_comparison import featured_runs, grid, regime_frame, varying_axes, with_drawdown
from rlpipe.tracking import notebook_reads

TEST_SLICES = {"test_bear_1", "test_bull_1", "test_sideways_1", "test_bull_2", "test_bear_2"}


def test_the_smoke_sweep_varies_only_the_reward(smoke_runs):
    assert varying_axes(smoke_runs) == ["reward"]
    one_configuration = smoke_runs[smoke_runs["reward"] == "pnl"]
    assert varying_axes(one_configuration) == ["reward"]  # a grid keeps one column
    same_axes = smoke_runs.assign(reward="pnl")  # configurations the axes do not tell apart
    assert varying_axes(same_axes) == ["config_hash"]


def test_grid_is_seeds_by_rewards(smoke_runs):
    totals = grid(smoke_runs)
    assert totals.shape == (2, 2)
    assert list(totals.index) == [1, 2] and list(totals.columns) == ["pnl", "pnl_fees"]
    row = smoke_runs[(smoke_runs["seed"] == 2) & (smoke_runs["reward"] == "pnl_fees")].iloc[0]
    assert totals.loc[2, "pnl_fees"] == pytest.approx(row["test_total"])
    verdicts = grid(smoke_runs, "sweep_verdict")
    assert verdicts.loc[2, "pnl_fees"] == row["sweep_verdict"]
    both = grid(smoke_runs, columns=["timesteps", "reward"])
    assert both.shape == (2, 2) and list(both.columns) == [(512, "pnl"), (512, "pnl_fees")]


def test_regime_frame_compares_agent_with_buy_and_hold_per_regime(smoke_sweep_ids, smoke_runs):
    uri, _, _ = smoke_sweep_ids
    regimes = regime_frame(notebook_reads.run_reports(uri, smoke_runs["run_id"]))
    assert len(regimes) == 4 * 3
    assert set(regimes["regime"]) == {"bull", "bear", "sideways"}
    assert regimes.groupby("run_id")["slices"].sum().eq(len(TEST_SLICES)).all()
    assert (regimes["edge"] == regimes["agent_total"] - regimes["buy_and_hold_total"]).all()
    # buy-and-hold does not depend on the agent: the same per regime for every run
    assert (regimes.groupby("regime")["buy_and_hold_total"].nunique() == 1).all()
    # the regime means add back up to the run's test total (the sum over test slices)
    sums = (regimes["agent_total"] * regimes["slices"]).groupby(regimes["run_id"]).sum()
    totals = smoke_runs.set_index("run_id")["test_total"]
    pd.testing.assert_series_equal(sums.sort_index(), totals.sort_index(), check_names=False)
    assert regime_frame({}).empty and list(regime_frame({}).columns)[-1] == "edge"


def test_featured_runs_put_the_champion_first_then_the_challengers(smoke_runs):
    a, b, c = smoke_runs["run_id"][:3]
    picks = {"champion": {"run_id": b, "version": "2"}, "challengers": [{"run_id": c, "version": "3"}]}
    featured = featured_runs(smoke_runs, picks)
    assert list(featured["run_id"]) == [b, c] and list(featured["pick"]) == ["champion", "challenger"]
    assert a not in set(featured["run_id"])  # runs that were not promoted stay out, however good
    assert featured["run_name"].notna().all()


def test_drawdown_is_each_curves_equity_under_its_own_running_peak():
    equity = [1.0, 1.2, 0.9, 1.3, 1.0, 0.5, 0.8, 1.1]
    curves = pd.DataFrame(
        {
            "run_id": ["r"] * 8,
            "slice": ["s1"] * 4 + ["s2"] * 4,  # a new slice starts from its own peak
            "policy": "agent",
            "bar": [0, 1, 2, 3] * 2,
            "equity": equity,
            "fees": 0.0,
        }
    )
    out = with_drawdown(curves)
    assert list(out.columns) == ["run_id", "slice", "policy", "bar", "equity", "drawdown", "fees"]
    np.testing.assert_allclose(out["drawdown"], [0, 0, 0.9 / 1.2 - 1, 0, 0, -0.5, -0.2, 0])
    assert "drawdown" not in curves  # the frame read is left as it was
    empty = with_drawdown(pd.DataFrame(columns=notebook_reads.CURVE_COLUMNS))
    assert empty.empty and list(empty.columns) == [
        *notebook_reads.CURVE_COLUMNS[:8],
        "drawdown",
        "fees",
        "turnover",
    ]
