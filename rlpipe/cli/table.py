"""The terminal table of a sweep's runs and verdicts, and where to look next.

Runs are listed best validation score first (what ranks them; test results gate, never rank), with
the values the sweep varied as columns, the champion marked and runs reused from an earlier sweep
said so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rlpipe.jobs.naming import HIDDEN, SHOWN_OTHERWISE
from rlpipe.project import LOCAL_UI, project_root
from rlpipe.reports.format import num, pct
from rlpipe.tracking.rows import JobRow

FIXED = ("validation {metric}", "test total", "test Sharpe", "vs buy&hold", "max DD", "run verdict",
         "sweep verdict", "version", "run id")  # fmt: skip
"""The columns after run, seed and the swept values."""
MAX_SWEPT = 5
"""At most this many swept values get a column (the run name and config label carry the rest)."""


@dataclass(frozen=True)
class SweepView:
    """What the table needs beside the rows: the sweep, what ranks, the champion's version."""

    sweep_id: str
    select_metric: str = "sharpe_mean"
    champion: str | None = None
    compare_url: str | None = None
    """The sweep's saved view in the MLflow UI (`rlpipe.tracking.ui.sweep_view`), None without one."""


def swept(rows: Sequence[JobRow]) -> list[str]:
    """The params whose values differ between the runs (the seed aside), in name order."""
    keys = sorted({k for r in rows for k in r.params} - set(SHOWN_OTHERWISE))
    keys = [k for k in keys if not k.startswith(HIDDEN)]  # the run names leave out the same keys
    return [k for k in keys if len({r.params.get(k) for r in rows}) > 1][:MAX_SWEPT]


def columns(rows: Sequence[JobRow], view: SweepView) -> tuple[str, ...]:
    """The header: run, seed, the swept values (by their last name part), then `FIXED`."""
    fixed = tuple(c.format(metric=view.select_metric) for c in FIXED)
    return ("run", "seed", *(k.rsplit(".", 1)[-1] for k in swept(rows)), *fixed)


def ranked(rows: Sequence[JobRow], view: SweepView) -> list[JobRow]:
    """Best validation score first; runs without one (failed, not judged) after, in their order."""

    def key(r: JobRow) -> float:
        score = r.validation.get(view.select_metric, math.nan)
        return -score if math.isfinite(score) else math.inf

    return sorted(rows, key=key)


def table_rows(rows: Sequence[JobRow], view: SweepView) -> list[tuple[str, ...]]:
    """One line of text cells per run, ranked, in the order of `columns`."""
    keys = swept(rows)
    return [
        (
            r.run_name + (" (reused)" if r.sweep_id and r.sweep_id != view.sweep_id else ""),
            str(r.seed if r.seed is not None else "-"),
            *(r.params.get(k, "-") for k in keys),
            num(r.validation.get(view.select_metric, math.nan), 3),
            pct(r.test_metric("total")),
            num(r.test_metric("sharpe_mean")),
            pct(r.test_metric("excess_total")),
            pct(r.test_metric("max_drawdown"), signed=False),
            r.verdict if r.finished or r.verdict == "failed" else r.status.lower(),
            r.sweep_verdict or "-",
            _version(r, view),
            r.run_id,
        )
        for r in ranked(rows, view)
    ]


def _version(r: JobRow, view: SweepView) -> str:
    if not r.model_version:
        return "-"
    return f"{r.model_version} champion" if r.model_version == view.champion else r.model_version


def where_to_compare(uri: str, sweep_id: str, compare_url: str | None = None) -> str:
    """The closing hint: how to open this store's UI on the sweep's runs; in one click when the sweep
    saved its view (`compare_url`, on a line of its own), else by filtering the runs on the sweep id."""
    filtered = f"filter with tags.`rlpipe.sweep_id` = '{sweep_id}'"
    server = uri.startswith(("http://", "https://"))
    if server:
        start, place = "Compare the runs: open ", f"{uri} (the tracking server) and {filtered}"
    else:
        store = "" if uri == f"sqlite:///{Path(project_root()) / 'mlruns' / 'mlflow.db'}" else f" STORE={uri}"
        start, place = f"Compare the runs: `make ui{store}`, then open ", f"{LOCAL_UI} and {filtered}"
    if compare_url:
        view = "the sweep's saved view" + (" on the tracking server" if server else "")
        return f"{start}{view} (its runs side by side, best validation score first):\n  {compare_url}"
    return start + place


def print_table(rows: Sequence[JobRow], view: SweepView, uri: str) -> None:
    """Print the sweep's runs and verdicts, and how to compare them in the MLflow UI."""
    table = Table(title=f"sweep {view.sweep_id}: runs ranked by validation {view.select_metric}")
    for col in columns(rows, view):
        table.add_column(col)
    for cells in table_rows(rows, view):
        table.add_row(*cells)
    console = Console(width=max(Console().width, 180))
    console.print(table)
    hint = where_to_compare(uri, view.sweep_id, view.compare_url)
    console.print(f"Tracking store: {uri}\n{hint}", soft_wrap=True, markup=False, highlight=False)
