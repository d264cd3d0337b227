"""The notebook's read helpers on a real smoke sweep (2 seeds x 2 reward specs through the CLI)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rlpipe.tracking import compare
from tests.conftest import Sweep

EXPERIMENT = "rlpipe"
TEST_SLICES = {"test_bear_1", "test_bull_1", "test_sideways_1", "test_bull_2", "test_bear_2"}


@pytest.fixture(scope="module")
def sweep(smoke_sweep: Sweep) -> tuple[str, str, Path]:
    """The session's smoke sweep (seed=1,2 x reward=pnl,pnl_fees): (uri, sweep id, folder)."""
    sweep_id = compare.latest_sweep_id(smoke_sweep.uri, EXPERIMENT)
    assert sweep_id is not None
    return smoke_sweep.uri, sweep_id, smoke_sweep.folder


@pytest.fixture(scope="module")
def frame(sweep: tuple[str, str, Path]) -> pd.DataFrame:
    uri, sweep_id, _ = sweep
    return compare.runs_frame(uri, EXPERIMENT, sweep_id)


def test_latest_sweep_id_names_the_sweep_of_the_cli_run(sweep):
    uri, sweep_id, _ = sweep
    assert sweep_id.startswith("multirun-")  # sweep_id_for(<tmp>/multirun): folder name + path hash
    assert compare.latest_sweep_id(uri, "no-such-experiment") is None
    assert compare.runs_frame(uri, "no-such-experiment", sweep_id).empty


def test_runs_frame_has_one_row_per_job_with_axes_verdicts_and_test_metrics(frame):
    assert len(frame) == 4
    assert (frame["status"] == "FINISHED").all()
    assert sorted(zip(frame["seed"], frame["reward"], strict=True)) == [
        (1, "pnl"),
        (1, "pnl_fees"),
        (2, "pnl"),
        (2, "pnl_fees"),
    ]
    assert set(frame["timesteps"]) == {512}
    assert set(frame["agent"]) == {"ppo"} and set(frame["env"]) == {"management"}
    assert frame["config_hash"].nunique() == 2  # one configuration per reward spec
    assert set(frame["verdict"]) <= {"reject", "pass"}
    assert set(frame["sweep_verdict"]) <= {"promote", "reject", "retest"}
    assert sorted(frame["model_version"].astype(int)) == [1, 2, 3, 4]
    for col in ("test_total", "test_max_drawdown", "test_consistency", "test_sharpe_mean", "test_fitness"):
        assert frame[col].notna().all(), col
    assert compare.varying_axes(frame) == ["reward"]


def test_grid_is_seeds_by_rewards(frame):
    totals = compare.grid(frame)
    assert totals.shape == (2, 2)
    assert list(totals.index) == [1, 2] and list(totals.columns) == ["pnl", "pnl_fees"]
    row = frame[(frame["seed"] == 2) & (frame["reward"] == "pnl_fees")].iloc[0]
    assert totals.loc[2, "pnl_fees"] == pytest.approx(row["test_total"])
    verdicts = compare.grid(frame, "sweep_verdict")
    assert verdicts.loc[2, "pnl_fees"] == row["sweep_verdict"]
    both = compare.grid(frame, columns=["timesteps", "reward"])
    assert both.shape == (2, 2) and list(both.columns) == [(512, "pnl"), (512, "pnl_fees")]


def test_gate_frame_has_run_and_configuration_gates_as_yes_no(sweep, frame):
    uri, sweep_id, _ = sweep
    gates = compare.gate_frame(uri, EXPERIMENT, sweep_id)
    assert len(gates) == 4 and set(gates["run_id"]) == set(frame["run_id"])
    run_gates = {"pass_majority_slices", "drawdown_under_cap", "no_single_slice_dependency"}
    assert run_gates <= set(gates.attrs["run_gates"])
    assert {"seed_stability", "deflated_sharpe", "pbo"} <= set(gates.attrs["config_gates"])
    for col in gates.attrs["run_gates"] + gates.attrs["config_gates"]:
        assert set(gates[col]) <= {"Y", "N"}, col
    # a run whose gates all passed is 'pass' (the sweep step decides); any N makes it 'reject'
    for _, row in gates.iterrows():
        passed = all(row[g] == "Y" for g in gates.attrs["run_gates"])
        assert row["verdict"] == ("pass" if passed else "reject"), row["run_name"]
    # the configuration gates are the same for every seed of a configuration
    per_config = gates.groupby("config_hash")[gates.attrs["config_gates"] + ["sweep_verdict"]].nunique()
    assert (per_config == 1).all().all()
    by_run = frame.set_index("run_id")["sweep_verdict"]
    assert (gates.set_index("run_id")["sweep_verdict"] == by_run).all()


def test_regime_frame_compares_agent_with_buy_and_hold_per_regime(sweep, frame):
    uri, _, _ = sweep
    regimes = compare.regime_frame(uri, frame["run_id"])
    assert len(regimes) == 4 * 3
    assert set(regimes["regime"]) == {"bull", "bear", "sideways"}
    assert regimes.groupby("run_id")["slices"].sum().eq(len(TEST_SLICES)).all()
    assert (regimes["edge"] == regimes["agent_total"] - regimes["buy_and_hold_total"]).all()
    # buy-and-hold does not depend on the agent: the same per regime for every run
    assert (regimes.groupby("regime")["buy_and_hold_total"].nunique() == 1).all()
    # the regime means add back up to the run's test total (the sum over test slices)
    sums = (regimes["agent_total"] * regimes["slices"]).groupby(regimes["run_id"]).sum()
    totals = frame.set_index("run_id")["test_total"]
    pd.testing.assert_series_equal(sums.sort_index(), totals.sort_index(), check_names=False)


def test_champion_and_challengers_match_the_sweep_report_and_registry(sweep, frame):
    uri, sweep_id, _ = sweep
    picks = compare.champion_and_challengers(uri, EXPERIMENT, sweep_id, "rlpipe-policy")
    assert picks["sweep_id"] == sweep_id and picks["parent_run_id"]
    promoted = frame[frame["sweep_verdict"] == "promote"]
    assert picks["promoted"] == (not promoted.empty)
    if picks["promoted"]:
        assert picks["champion"]["run_id"] in set(promoted["run_id"])
        assert picks["aliases"]["champion"] == picks["champion"]["version"]
        assert picks["champion_is_current"]
    else:
        assert picks["champion"] is None and picks["challengers"] == []
        assert picks["aliases"]["champion"] is None
    featured = compare.featured_runs(frame, picks, n=3)
    if not picks["promoted"]:
        assert list(featured["pick"]) == ["best test total"] * 3
        best = frame.sort_values("test_total", ascending=False)["run_id"].head(3)
        assert list(featured["run_id"]) == list(best)


def test_featured_runs_put_the_champion_first_then_the_challengers(frame):
    a, b, c = frame["run_id"][:3]
    picks = {"champion": {"run_id": b, "version": "2"}, "challengers": [{"run_id": c, "version": "3"}]}
    featured = compare.featured_runs(frame, picks)
    assert list(featured["run_id"]) == [b, c] and list(featured["pick"]) == ["champion", "challenger"]
    assert a not in set(featured["run_id"])  # runs that were not promoted stay out, however good
    assert featured["run_name"].notna().all()


def test_curves_frame_holds_every_test_slice_for_every_policy(sweep, frame):
    uri, _, _ = sweep
    ids = list(frame["run_id"][:2])
    curves = compare.curves_frame(uri, ids)
    assert set(curves["run_id"]) == set(ids)
    assert set(curves["slice"]) == TEST_SLICES and set(curves["role"]) == {"test"}
    assert set(curves["policy"]) == {"agent", "buy_and_hold", "flat", "random"}
    start = curves[curves["bar"] == 0]
    assert len(start) == 2 * len(TEST_SLICES) * 4
    everything = compare.curves_frame(uri, ids[:1], role=None)
    assert {"train", "validation", "test"} == set(everything["role"])
    assert compare.curves_frame(uri, []).empty
