"""Hydra callbacks (entry-point layer): set the store up before a multirun fans out, report after."""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rlpipe.tracking.queries import sweep_runs
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger("rlpipe.sweep")


def sweep_id_for(sweep_dir: str) -> str:
    """A readable, unique id of a multirun: its folder name plus a hash of its full path."""
    path = str(Path(sweep_dir).resolve())
    return f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


class SweepCallback(Callback):
    """Creates the experiment once before jobs start; prints the sweep table at the end."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        ensure_experiment(config.tracking.uri, config.tracking.experiment)
        log.info(
            "sweep %s -> %s (experiment %s)",
            sweep_id_for(config.hydra.sweep.dir),
            config.tracking.uri,
            config.tracking.experiment,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        rows = sweep_runs(config.tracking.uri, config.tracking.experiment, sweep_id)
        print_table(sweep_id, rows, config.tracking.uri)
        failed = [r for r in rows if r["status"] != "FINISHED"]
        if failed:
            log.error(
                "%d of %d job(s) failed: %s",
                len(failed),
                len(rows),
                "; ".join(f"{r['run_name']}: {r['error']}" for r in failed),
            )
            raise SystemExit(1)


def print_table(sweep_id: str, rows: list[dict[str, Any]], uri: str) -> None:
    """The sweep's runs and verdicts, and where to look next."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep {sweep_id}")
    for col in (
        "run",
        "seed",
        "status",
        "verdict",
        "test total",
        "max DD",
        "positive",
        "version",
        "run id",
    ):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["run_name"],
            r["seed"],
            r["status"],
            r["verdict"],
            _pct(r["test_total"]),
            _pct(r["test_max_drawdown"]),
            _pct(r["consistency"]),
            str(r["model_version"]),
            r["run_id"],
        )
    console = Console(width=max(Console().width, 180))
    console.print(table)
    console.print(
        f"Tracking store: {uri}\nCompare the runs: `make ui`, then open http://127.0.0.1:5000 "
        f"and filter with tags.`rlpipe.sweep_id` = '{sweep_id}'"
    )


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}%"
