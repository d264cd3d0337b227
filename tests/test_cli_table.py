"""The terminal table of a sweep: cells per run in column order, and the printed table and hint."""

from __future__ import annotations

import pytest

from rlpipe.cli.table import COLUMNS, print_table, table_rows
from rlpipe.gates.rules import PASS, PROMOTE, REJECT
from rlpipe.tracking.rows import JobRow
from tests.test_reports_sweep_report import LABEL_A, LABEL_B, job_row

RUN_IDS = (
    "3f1c9a0b7d2e4c5f8a6b1d0e9c8f7a6b",
    "a0b1c2d3e4f5061728394a5b6c7d8e9f",
    "0123456789abcdef0123456789abcdef",
)


def rows() -> list[JobRow]:
    return [
        job_row(
            RUN_IDS[0],
            seed=1,
            verdict=PASS,
            sweep_verdict=PROMOTE,
            version="4",
            test={"total": 0.1234, "max_drawdown": 0.0567, "consistency": 0.8},
        ),
        job_row(
            RUN_IDS[1],
            seed=2,
            config_hash="b",
            label=LABEL_B,
            verdict=REJECT,
            sweep_verdict="",
            test={"total": -0.0421, "max_drawdown": 0.2, "consistency": 0.25},
        ),
        job_row(RUN_IDS[2], seed=None, status="FAILED", verdict="failed"),
    ]


def test_table_rows_are_one_tuple_per_run_in_column_order() -> None:
    assert COLUMNS == (
        "run", "seed", "status", "run verdict", "sweep verdict", "test total", "max DD", "positive",
        "version", "run id",
    )  # fmt: skip
    a, b, failed = RUN_IDS
    assert table_rows(rows()) == [
        (f"{LABEL_A}-s1", "1", "FINISHED", "pass", "promote", "+12.34%", "+5.67%", "+80.00%", "4", a),
        (f"{LABEL_B}-s2", "2", "FINISHED", "reject", "-", "-4.21%", "+20.00%", "+25.00%", "-", b),
        (LABEL_A, "-", "FAILED", "failed", "-", "n/a", "n/a", "n/a", "-", failed),
    ]  # fmt: skip
    assert all(len(cells) == len(COLUMNS) for cells in table_rows(rows()))
    assert table_rows([]) == []


def test_print_table_shows_every_run_and_the_filter_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that rich wraps no cell
    uri = "sqlite:////tmp/store/mlflow.db"
    print_table("sweep-20240501-1000", rows(), uri)
    out = capsys.readouterr().out
    assert "sweep sweep-20240501-1000" in out  # the title
    for col in COLUMNS:
        assert col in out
    lines = out.splitlines()
    for run_id, total in zip(RUN_IDS, ("+12.34%", "-4.21%", "n/a"), strict=True):
        (line,) = [line for line in lines if run_id in line]
        assert total in line
    assert f"Tracking store: {uri}" in out
    assert "filter with tags.`rlpipe.sweep_id` = 'sweep-20240501-1000'" in out
