"""What the notebook reads from the store, on a real smoke sweep (2 seeds x 2 reward specs through the
CLI)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlpipe.reports.run_comparison import featured_runs, with_drawdown
from rlpipe.tracking import notebook_reads, queries
from rlpipe.tracking.tracker import Tracker
from tests.support.stores import crownable

EXPERIMENT = "rlpipe"
TEST_SLICES = {"test_bear_1", "test_bull_1", "test_sideways_1", "test_bull_2", "test_bear_2"}


def test_latest_sweep_id_names_the_sweep_of_the_cli_run(smoke_sweep_ids):
    uri, sweep_id, _ = smoke_sweep_ids
    assert sweep_id.startswith("multirun-")  # sweep_id_for(<tmp>/multirun): folder name + path hash
    assert notebook_reads.latest_sweep_id(uri, "no-such-experiment") is None
    assert notebook_reads.runs_frame(uri, "no-such-experiment", sweep_id).empty


def test_runs_frame_has_one_row_per_job_with_axes_verdicts_and_test_metrics(smoke_runs):
    assert len(smoke_runs) == 4
    assert (smoke_runs["status"] == "FINISHED").all()
    assert sorted(zip(smoke_runs["seed"], smoke_runs["reward"], strict=True)) == [
        (1, "pnl"),
        (1, "pnl_fees"),
        (2, "pnl"),
        (2, "pnl_fees"),
    ]
    assert set(smoke_runs["timesteps"]) == {512}
    assert set(smoke_runs["agent"]) == {"ppo"} and set(smoke_runs["env"]) == {"management"}
    assert smoke_runs["config_hash"].nunique() == 2  # one configuration per reward spec
    assert set(smoke_runs["verdict"]) <= {"reject", "pass"}
    assert set(smoke_runs["sweep_verdict"]) <= {"promote", "reject", "retest"}
    assert sorted(smoke_runs["model_version"].astype(int)) == [1, 2, 3, 4]
    for col in ("test_total", "test_max_drawdown", "test_consistency", "test_sharpe_mean", "test_fitness"):
        assert smoke_runs[col].notna().all(), col


def test_champion_and_challengers_match_the_sweep_report_and_registry(smoke_sweep_ids, smoke_runs):
    uri, sweep_id, _ = smoke_sweep_ids
    picks = notebook_reads.champion_and_challengers(uri, EXPERIMENT, sweep_id, "rlpipe-policy")
    assert picks["sweep_id"] == sweep_id and picks["parent_run_id"]
    promoted = crownable(uri, smoke_runs)
    assert picks["promoted"] == (not promoted.empty)
    if picks["promoted"]:
        assert picks["champion"]["run_id"] in set(promoted["run_id"])
        assert picks["aliases"]["champion"] == picks["champion"]["version"]
        assert picks["champion_is_current"]
    else:
        assert picks["champion"] is None and picks["challengers"] == []
        assert picks["aliases"]["champion"] is None
    featured = featured_runs(smoke_runs, picks, n=3)
    if not picks["promoted"]:
        assert list(featured["pick"]) == ["best validation"] * 3
        best = smoke_runs.sort_values("validation_sharpe_mean", ascending=False)["run_id"].head(3)
        assert list(featured["run_id"]) == list(best)


def test_curves_frame_holds_every_test_slice_for_every_policy(smoke_sweep_ids, smoke_runs):
    uri, _, _ = smoke_sweep_ids
    ids = list(smoke_runs["run_id"][:2])
    curves = notebook_reads.curves_frame(uri, ids)
    assert set(curves["run_id"]) == set(ids)
    assert set(curves["slice"]) == TEST_SLICES and set(curves["role"]) == {"test"}
    assert set(curves["policy"]) == {"agent", "buy_and_hold", "flat", "random"}
    start = curves[curves["bar"] == 0]
    assert len(start) == 2 * len(TEST_SLICES) * 4
    everything = notebook_reads.curves_frame(uri, ids[:1], role=None)
    assert {"train", "validation", "test"} == set(everything["role"])
    assert notebook_reads.curves_frame(uri, []).empty
    assert list(curves.columns) == [
        "run_id", "slice", "role", "regime", "policy", "bar", "time", "equity", "fees", "turnover",
    ]  # fmt: skip


def test_curves_carry_utc_bar_times_drawdown_fees_and_turnover_matching_the_run_report(
    smoke_sweep_ids, smoke_runs
):
    uri, _, _ = smoke_sweep_ids
    run_id = smoke_runs["run_id"].iloc[0]
    curves = with_drawdown(notebook_reads.curves_frame(uri, [run_id], role=None))
    assert isinstance(curves["time"].dtype, pd.DatetimeTZDtype) and str(curves["time"].dt.tz) == "UTC"
    assert curves["time"].notna().all()
    report = queries.load_json(Tracker(uri, EXPERIMENT).client, run_id, "report/report.json")
    assert len(report["slices"]) == curves.groupby(["slice", "policy"]).ngroups
    for s in report["slices"]:
        part = curves[(curves["slice"] == s["slice"]) & (curves["policy"] == s["policy"])]
        times = part["time"]
        assert times.is_monotonic_increasing and times.is_unique
        assert pd.Timestamp(s["start"]) <= times.iloc[0] and times.iloc[-1] <= pd.Timestamp(s["end"])
        assert list(part["bar"]) == list(range(len(part)))
        peak = part["equity"].cummax()
        np.testing.assert_allclose(part["drawdown"], part["equity"] / peak - 1.0)
        assert part["drawdown"].max() <= 0.0
        assert part["fees"].iloc[-1] == s["fees"] and part["turnover"].iloc[-1] == s["turnover"]
        assert part["equity"].iloc[-1] == pytest.approx(1.0 + s["total"], rel=1e-12)
    # every policy of a slice runs over the same bars
    assert (curves.groupby(["slice", "bar"])["time"].nunique() == 1).all()


def test_run_reports_are_each_runs_report_by_run_id_in_order(smoke_sweep_ids, smoke_runs):
    uri, _, _ = smoke_sweep_ids
    ids = list(smoke_runs["run_id"][::-1])
    reports = notebook_reads.run_reports(uri, ids)
    assert list(reports) == ids
    for run_id, report in reports.items():
        assert report == queries.load_json(Tracker(uri, EXPERIMENT).client, run_id, "report/report.json")
        assert {s["role"] for s in report["slices"]} >= {"test"}


def test_gate_records_hold_each_runs_gate_metrics_its_reported_gates_and_the_sweep_report(
    smoke_sweep_ids, smoke_runs
):
    uri, sweep_id, _ = smoke_sweep_ids
    gates = notebook_reads.gate_records(uri, EXPERIMENT, sweep_id)
    assert [r.row.run_id for r in gates.runs] == list(smoke_runs["run_id"])
    tracker = Tracker(uri, EXPERIMENT)
    for record in gates.runs:
        metrics = tracker.client.get_run(record.row.run_id).data.metrics
        assert record.passed == {
            k.removeprefix("gate/"): v for k, v in metrics.items() if k.startswith("gate/")
        }
        assert set(record.passed) and set(record.passed) <= set(record.reported)
    assert gates.report == queries.sweep_report(tracker, sweep_id)
