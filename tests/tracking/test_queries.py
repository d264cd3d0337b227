"""The read side: job runs as typed rows, values parsed once; reports and curves read back."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rlpipe.errors import MissingArtifactError
from rlpipe.tracking import queries
from rlpipe.tracking.tracker import Tracker


def test_rows_parse_seed_and_timesteps_and_keep_test_aggregates(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    tags = {"rlpipe.sweep_id": "s", "rlpipe.kind": "job", "rlpipe.seed": "7", "rlpipe.config_hash": "h1",
            "rlpipe.config_label": "ppo-management-pnl-t10", "rlpipe.agent": "ppo"}  # fmt: skip
    with tracker.run("r-s7", tags) as run:
        run.log_params({"timesteps": 10, "seed": 7})
        run.log_metrics({"test/total": 0.25, "test/fold1/total": 0.1, "validation/total": 0.3})
        run.set_tags({"rlpipe.verdict": "pass", "rlpipe.model_version": "4"})
    with tracker.run("other-sweep", {**tags, "rlpipe.sweep_id": "t"}):
        pass
    (row,) = queries.job_rows(tracker, "s")
    assert (row.run_id, row.run_name, row.status, row.seed, row.timesteps) == (
        run.run_id,
        "r-s7",
        "FINISHED",
        7,
        10,
    )
    assert (row.config_hash, row.label, row.agent, row.verdict, row.model_version) == (
        "h1", "ppo-management-pnl-t10", "ppo", "pass", "4",
    )  # fmt: skip
    assert row.test == {"total": 0.25} and row.test_metric("total") == 0.25
    assert math.isnan(row.test_metric("max_drawdown")) and row.finished
    assert row.regimes_missing == () and row.sweep_verdict == ""


def test_a_failed_run_reads_as_failed_without_metrics(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    try:
        with tracker.run("boom", {"rlpipe.sweep_id": "s", "rlpipe.kind": "job"}) as run:
            run.set_tags({"rlpipe.verdict": "retest"})  # judged, then failed (say, at registration)
            raise RuntimeError("no data")
    except RuntimeError:
        pass
    (row,) = queries.job_rows(tracker, "s")
    assert (row.status, row.verdict, row.seed, row.finished) == ("FAILED", "failed", None, False)
    assert row.error == "RuntimeError: no data"


def test_latest_sweep_report_and_curves_are_read_back(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    assert queries.latest_sweep_id(tracker) is None and queries.job_rows(tracker, "s") == []
    for sweep in ("s1", "s2"):
        tracker.ensure_parent_run(sweep)
    assert queries.latest_sweep_id(tracker) == "s2"
    assert queries.sweep_report(tracker, "s2") is None  # before the sweep step wrote it
    tracker.handle(tracker.parent_run("s2")).log_dict({"champion": None}, "sweep/report.json")
    assert queries.sweep_report(tracker, "s2") == {"champion": None}
    curves = pd.DataFrame({"slice": ["a"], "role": ["test"], "regime": ["bull"], "policy": ["agent"],
                           "bar": [0], "equity": [1.0]})  # fmt: skip
    with tracker.run("c", {}) as run:
        run.log_table(curves, "curves/equity.parquet")
    pd.testing.assert_frame_equal(queries.equity_curves(tracker.client, run.run_id), curves)


def test_a_weekly_sweeps_week_is_counted_once_and_kept_on_its_parent_run(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    for sweep in ("w1", "w2"):  # two earlier weeks with explorers, one sweep without
        with tracker.run(f"{sweep}-e", {"rlpipe.sweep_id": sweep, "rlpipe.weekly_role": "explorer-0"}):
            pass
    with tracker.run("plain", {"rlpipe.sweep_id": "p", "rlpipe.weekly_role": "champion-0"}):
        pass
    assert queries.explorer_sweeps(tracker, None) == 2  # a single job outside a sweep counts each time
    parent = tracker.ensure_parent_run("w3")
    assert queries.explorer_sweeps(tracker, "w3") == 2
    assert tracker.client.get_run(parent).data.tags["rlpipe.weekly_week"] == "2"
    # later jobs of the week read it: explorers this week (or a later week's) do not move it
    with tracker.run("w3-e", {"rlpipe.sweep_id": "w3", "rlpipe.weekly_role": "explorer-0"}):
        pass
    with tracker.run("w4-e", {"rlpipe.sweep_id": "w4", "rlpipe.weekly_role": "explorer-0"}):
        pass
    assert queries.explorer_sweeps(tracker, "w3") == 2
    assert queries.explorer_sweeps(tracker, "w5") == 4  # no parent run: counted, nothing kept


def test_a_runs_curves_are_read_by_role_and_policy_from_its_artifact_root(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    curves = pd.DataFrame({"slice": ["v", "t1", "t1", "t2", "t1"], "role": ["validation"] + ["test"] * 4,
                           "policy": ["agent", "agent", "flat", "agent", "agent"], "bar": [0, 1, 0, 0, 0],
                           "equity": [1.0, 1.2, 1.0, 0.9, 1.1]})  # fmt: skip
    with tracker.run("c", {}) as run:
        run.log_table(curves, "curves/equity.parquet")
    (row,) = [queries.job_row(r) for r in tracker.search("attributes.run_name = 'c'")]
    assert row.artifact_uri == tracker.client.get_run(run.run_id).info.artifact_uri
    test = queries.equity_curves(tracker.client, run.run_id, role="test", policy="agent")
    assert test["equity"].tolist() == [1.2, 0.9, 1.1]
    # from the row's artifact root (no lookup of the run): the same curves, slices in recorded order
    by_root = queries.agent_test_curves(tracker.client, run.run_id, row.artifact_uri)
    assert [c.tolist() for c in by_root] == [[1.1, 1.2], [0.9]]
    assert [c.tolist() for c in queries.agent_test_curves(tracker.client, run.run_id)] == [[1.1, 1.2], [0.9]]
    with pytest.raises(MissingArtifactError):  # a root without the file: the sweep step skips the run
        queries.agent_test_curves(tracker.client, run.run_id, row.artifact_uri + "/elsewhere")
