"""The terminal table of a sweep: cells per run in column order, and the printed table and hint."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rlpipe.cli.table import SweepView, columns, print_table, swept, table_rows, where_to_compare
from rlpipe.gates.rules import PASS, PROMOTE, REJECT
from rlpipe.tracking.rows import JobRow
from tests.support.project import ROOT
from tests.support.records import LABEL_A, LABEL_B, job_row

RUN_IDS = (
    "3f1c9a0b7d2e4c5f8a6b1d0e9c8f7a6b",
    "a0b1c2d3e4f5061728394a5b6c7d8e9f",
    "0123456789abcdef0123456789abcdef",
)


def rows() -> list[JobRow]:
    a = job_row(
        RUN_IDS[0],
        seed=1,
        verdict=PASS,
        sweep_verdict=PROMOTE,
        version="4",
        test={"total": 0.1234, "max_drawdown": 0.0567, "sharpe_mean": 1.5, "excess_total": 0.02},
    )
    b = job_row(
        RUN_IDS[1],
        seed=2,
        config_hash="b",
        label=LABEL_B,
        verdict=REJECT,
        sweep_verdict="",
        test={"total": -0.0421, "max_drawdown": 0.2, "sharpe_mean": -0.4, "excess_total": -0.1},
    )
    failed = job_row(RUN_IDS[2], seed=None, status="FAILED", verdict="failed")
    return [
        replace(failed, params={"seed": "3", "reward.kind": "pnl", "weekly.job": "2"}),
        replace(b, validation={"sharpe_mean": 0.9}, params={"seed": "2", "reward.kind": "pnl_fees"},
                sweep_id="sw-old"),
        replace(a, validation={"sharpe_mean": 1.2}, params={"seed": "1", "reward.kind": "pnl"},
                sweep_id="sw"),
    ]  # fmt: skip


VIEW = SweepView("sw", "sharpe_mean", champion="4")


def test_runs_are_ranked_by_validation_with_the_swept_values_and_the_champion_marked() -> None:
    assert columns(rows(), VIEW) == (
        "run", "seed", "kind", "validation sharpe_mean", "test total", "test Sharpe", "vs buy&hold", "max DD",
        "run verdict", "sweep verdict", "version", "run id",
    )  # fmt: skip
    a, b, failed = RUN_IDS
    assert table_rows(rows(), VIEW) == [
        (f"{LABEL_A}-s1", "1", "pnl", "1.200", "+12.34%", "1.50", "+2.00%", "5.67%", "pass", "promote",
         "4 champion", a),
        (f"{LABEL_B}-s2 (reused)", "2", "pnl_fees", "0.900", "-4.21%", "-0.40", "-10.00%", "20.00%", "reject",
         "-", "-", b),
        (LABEL_A, "-", "pnl", "n/a", "n/a", "n/a", "n/a", "n/a", "failed", "-", "-", failed),
    ]  # fmt: skip
    assert table_rows([], VIEW) == [] and swept([]) == []


def test_only_values_that_differ_get_a_column_and_bookkeeping_never_does() -> None:
    same = [replace(r, params={"seed": str(i), "weekly.job": str(i), "agent.gamma": "0.99"})
            for i, r in enumerate(rows())]  # fmt: skip
    assert swept(same) == []
    assert columns(same, VIEW)[:3] == ("run", "seed", "validation sharpe_mean")


@pytest.mark.parametrize(
    ("uri", "hint"),
    [
        (
            "http://10.0.0.5:5001",
            "Compare the runs: open http://10.0.0.5:5001 (the tracking server) and filter",
        ),
        (
            "sqlite:////tmp/store/mlflow.db",
            "Compare the runs: `make ui STORE=sqlite:////tmp/store/mlflow.db`, then",
        ),
        (
            f"sqlite:///{ROOT}/mlruns/mlflow.db",
            "Compare the runs: `make ui`, then open http://127.0.0.1:5000 and",
        ),
    ],
)
def test_the_closing_hint_names_the_store_that_was_used(uri: str, hint: str) -> None:
    assert where_to_compare(uri, "sw").startswith(hint)
    assert where_to_compare(uri, "sw").endswith("filter with tags.`rlpipe.sweep_id` = 'sw'")


URL = "http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=rlpipe-sw"


@pytest.mark.parametrize(
    ("uri", "hint"),
    [
        ("http://10.0.0.5:5001", "open the sweep's saved view on the tracking server ("),
        ("sqlite:////tmp/store/mlflow.db", "`make ui STORE=sqlite:////tmp/store/mlflow.db`, then open the"),
        (f"sqlite:///{ROOT}/mlruns/mlflow.db", "`make ui`, then open the sweep's saved view ("),
    ],
)  # fmt: skip
def test_the_closing_hint_gives_the_sweeps_comparison_url_on_a_line_of_its_own(uri: str, hint: str) -> None:
    first, url = where_to_compare(uri, "sw", URL).splitlines()
    assert first.startswith(f"Compare the runs: {hint}") and url == f"  {URL}"


def test_print_table_shows_every_run_and_the_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich wraps no cell
    uri = "sqlite:////tmp/store/mlflow.db"
    print_table(rows(), VIEW, uri)
    out = capsys.readouterr().out
    assert "sweep sw: runs ranked by validation sharpe_mean" in out  # the title
    for col in columns(rows(), VIEW):
        assert col in out
    lines = out.splitlines()
    for run_id, total in zip(RUN_IDS, ("+12.34%", "-4.21%", "n/a"), strict=True):
        (line,) = [line for line in lines if run_id in line]
        assert total in line
    assert f"Tracking store: {uri}" in out and where_to_compare(uri, "sw") in out
    # the sweep's one-click URL is printed whole, however long, on a line of its own
    print_table(rows(), replace(VIEW, compare_url=URL + "-" + "x" * 200), uri)
    out = capsys.readouterr().out
    assert f"\n  {URL}-{'x' * 200}\n" in out and "filter with" not in out
