"""The terminal table of a sweep's runs and verdicts, and where to look next."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from rlpipe.reports.format import pct
from rlpipe.tracking.rows import JobRow

COLUMNS = ("run", "seed", "status", "run verdict", "sweep verdict", "test total", "max DD", "positive",
           "version", "run id")  # fmt: skip


def table_rows(rows: Sequence[JobRow]) -> list[tuple[str, ...]]:
    """One line of text cells per run, in the order of `COLUMNS`."""
    return [
        (
            r.run_name,
            str(r.seed if r.seed is not None else "-"),
            r.status,
            r.verdict,
            r.sweep_verdict or "-",
            pct(r.test_metric("total")),
            pct(r.test_metric("max_drawdown")),
            pct(r.test_metric("consistency")),
            r.model_version or "-",
            r.run_id,
        )
        for r in rows
    ]


def print_table(sweep_id: str, rows: Sequence[JobRow], uri: str) -> None:
    """Print the sweep's runs and verdicts, and how to compare them in the MLflow UI."""
    table = Table(title=f"sweep {sweep_id}")
    for col in COLUMNS:
        table.add_column(col)
    for cells in table_rows(rows):
        table.add_row(*cells)
    console = Console(width=max(Console().width, 180))
    console.print(table)
    console.print(
        f"Tracking store: {uri}\nCompare the runs: `make ui`, then open http://127.0.0.1:5000 "
        f"and filter with tags.`rlpipe.sweep_id` = '{sweep_id}'"
    )
