"""Hydra callbacks (entry-point layer): set the store up before a multirun fans out, report after."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig

from rlpipe.evaluation.report import pct
from rlpipe.sweep import sweep_step
from rlpipe.tracking.queries import sweep_runs
from rlpipe.tracking.runs import ensure_parent_run
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger("rlpipe.sweep")


def sweep_id_for(sweep_dir: str) -> str:
    """A readable, unique id of a multirun: its folder name plus a hash of its full path."""
    path = str(Path(sweep_dir).resolve())
    return f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"


class SweepCallback(Callback):
    """Before the jobs: the experiment and the sweep's parent run. After: the sweep step and a table."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        exp_id = ensure_experiment(config.tracking.uri, config.tracking.experiment)
        parent = ensure_parent_run(exp_id, sweep_id)
        log.info(
            "sweep %s -> %s (experiment %s, parent run %s)",
            sweep_id,
            config.tracking.uri,
            config.tracking.experiment,
            parent,
        )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and exits 0; a sweep whose step
        # failed must not look like a success, so the failure is logged and the exit is non-zero.
        try:
            self._end(config)
        except Exception:
            log.exception(
                "the sweep-level step failed; rerun it with python -m rlpipe.promote sweep_id=%s",
                sweep_id_for(config.hydra.sweep.dir),
            )
            raise SystemExit(1) from None

    def _end(self, config: DictConfig) -> None:
        sweep_id = sweep_id_for(config.hydra.sweep.dir)
        gates = instantiate(config.gates, _convert_="all")
        decision = sweep_step(
            config.tracking.uri, config.tracking.experiment, config.tracking.registered_model, sweep_id, gates
        )
        rows = sweep_runs(config.tracking.uri, config.tracking.experiment, sweep_id)
        print_table(sweep_id, rows, config.tracking.uri)
        champ = decision.champion
        log.info("champion: %s", f"v{champ.model_version} (run {champ.run_id})" if champ else "none promoted")
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
        "run verdict",
        "sweep verdict",
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
            r["sweep_verdict"] or "-",
            pct(r["test_total"]),
            pct(r["test_max_drawdown"]),
            pct(r["consistency"]),
            str(r["model_version"]),
            r["run_id"],
        )
    console = Console(width=max(Console().width, 180))
    console.print(table)
    console.print(
        f"Tracking store: {uri}\nCompare the runs: `make ui`, then open http://127.0.0.1:5000 "
        f"and filter with tags.`rlpipe.sweep_id` = '{sweep_id}'"
    )
