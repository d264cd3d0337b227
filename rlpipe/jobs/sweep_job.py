"""The sweep-level step: after a multirun, or by hand with `python -m rlpipe.promote sweep_id=...`.

Reads the sweep's job runs from the store, applies the sweep gates (`rlpipe.gates.sweep_gates`) to the
finished ones, moves the registry, tags every run with its configuration's verdict, and writes
the sweep report (markdown, JSON, comparison plot) to the sweep's parent run. Running it twice
changes nothing the second time: registry moves compare the desired state with the current one,
and the report is rebuilt from recorded state only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlpipe.errors import MissingArtifactError
from rlpipe.evaluation.metrics import returns as per_bar_returns
from rlpipe.gates.rules import PAPER, GatesConfig
from rlpipe.gates.sweep_gates import RunRecord, SweepDecision, evaluate_sweep
from rlpipe.jobs.generations import generations
from rlpipe.reports.format import json_safe
from rlpipe.reports.sweep_report import sweep_note, sweep_report
from rlpipe.tracking import queries, registry_lock, ui
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.reaper import reap
from rlpipe.tracking.registry import CHAMPION, Registry
from rlpipe.tracking.rows import JobRow
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
SKIPPED = "skipped"
"""Sweep verdict of a finished run the step could not judge: its recorded curves are missing."""


@dataclass(frozen=True)
class SweepOutcome:
    """The sweep's runs as recorded and what the sweep step decided about them."""

    sweep_id: str
    rows: list[JobRow]
    """The sweep's job runs, with the sweep verdict this step gave them."""
    decision: SweepDecision
    compare_url: str | None = None
    """The MLflow UI's view of the sweep's runs (`rlpipe.tracking.ui.sweep_view`)."""

    @property
    def failed(self) -> list[JobRow]:
        return [r for r in self.rows if not r.finished]


def start_sweep(tracking: TrackingConfig, sweep_id: str, swept: Sequence[str] = ()) -> str:
    """Create the experiment and the sweep's parent run once, before the jobs fan out; returns its id.
    A rerun into the same sweep folder reopens the parent run (RUNNING until its sweep step).
    `swept`: the config keys the sweep varies, recorded on the parent for its jobs' run names."""
    tracker = Tracker.of(tracking)
    parent = tracker.ensure_parent_run(sweep_id)
    tracker.reopen(parent)
    if swept:
        tracker.handle(parent).set_tags({T.SWEPT: ",".join(swept)})
    return parent


def reap_dead_runs(tracking: TrackingConfig) -> list[str]:
    """Mark the experiment's runs left RUNNING by a process that died KILLED; returns their ids."""
    return reap(Tracker.of(tracking))


def release_dead_locks(tracking: TrackingConfig) -> list[str]:
    """Break the store's registry locks whose holder is gone (`rlpipe.tracking.registry_lock`);
    returns their names."""
    return registry_lock.release_dead_locks(Tracker.of(tracking).client)


def close_interrupted_sweep(tracking: TrackingConfig, sweep_id: str) -> None:
    """Close the parent run of a sweep whose process ends before its sweep step, as KILLED; a sweep
    that recorded no job (refused before its first one: a value Hydra cannot apply, say) leaves no
    run behind: its parent is closed and deleted (MLflow's deleted runs, restorable)."""
    tracker = Tracker.of(tracking)
    parent = tracker.parent_run(sweep_id)
    if parent is None or tracker.client.get_run(parent).info.status != "RUNNING":
        return
    if not queries.job_runs(tracker, sweep_id):
        tracker.handle(parent).set_tags({T.ERROR: "the sweep stopped before its first job"})
        tracker.finish(parent, "KILLED")
        tracker.client.delete_run(parent)
        log.info("sweep %s stopped before its first job: nothing of it is kept in the store", sweep_id)
        return
    tracker.handle(parent).set_tags(
        {
            T.ERROR: "the sweep was interrupted before its sweep step; rerun the same command with "
            f"resume=true (finished jobs are reused), or judge it as it is: python -m rlpipe.promote "
            f"sweep_id={sweep_id}"
        }
    )
    tracker.finish(parent, "KILLED")
    log.warning("sweep %s interrupted: its parent run is marked KILLED", sweep_id)


def run_sweep_step(tracking: TrackingConfig, gates: GatesConfig, sweep_id: str) -> SweepOutcome:
    """Judge sweep `sweep_id`, move the registry, and report to its parent run."""
    tracker = Tracker.of(tracking)
    registry = Registry(tracker.client, tracking.registered_model)
    parent = tracker.ensure_parent_run(sweep_id)
    judged = registered_here(registry, current_rows(queries.job_rows(tracker, sweep_id)))
    rows, records = _records(tracker, judged)
    trials = _trials(rows)
    decision = evaluate_sweep(records, gates, trials) if records else SweepDecision([], None, [], None, 0)
    champion = (decision.champion.model_version or None) if decision.champion else None
    verdicts = {r.run_id: c.verdict for c in decision.configs for r in c.runs}
    for run_id, verdict in verdicts.items():
        tracker.handle(run_id).set_tags({T.SWEEP_VERDICT: verdict})
    by_version = {r.model_version: c.verdict for c in decision.configs for r in c.runs if r.model_version}
    challengers = [r.model_version for r in decision.challengers if r.model_version]
    before = registry.alias_version(CHAMPION)
    paper = decision.champion is not None and decision.champion.deployment == PAPER
    registry.apply_sweep(sweep_id, champion, challengers, _why(sweep_id, decision), by_version, paper)
    versions = [r.model_version for c in decision.configs for r in c.runs if r.model_version]
    md, data = sweep_report(sweep_id, rows, decision, registry.history(versions))
    gens = generations(tracker, registry, rows, before, sweep_id, gates.select_metric)
    md += "\n".join(gens.lines)
    data["generations"] = json_safe(gens.metrics)
    out = tracker.handle(parent)
    out.log_text(md, "sweep/report.md")
    out.log_dict(data, "sweep/report.json")
    out.log_metrics(gens.metrics)
    out.log_metric_series(gens.series)
    out.log_metrics(_parent_metrics(rows, decision))
    promoted = sum(c.verdict == "promote" for c in decision.configs)
    note = sweep_note(sweep_id, rows, decision, gates.select_metric)
    out.set_tags({T.CHAMPION_VERSION: champion or "none", T.PROMOTED_CONFIGS: str(promoted), T.NOTE: note})
    if decision.champion:  # the comparison plot, drawn after the step (`tear_sheet_job.draw_sweep`), rings it
        out.set_tags({T.CHAMPION_RUN: decision.champion.run_id})
    url = ui.sweep_view(tracker, sweep_id, select=gates.select_metric)  # also `python -m rlpipe.runs compare`
    failed = sum(not r.finished for r in rows)
    if failed:
        out.set_tags({T.ERROR: f"{failed} of {len(rows)} job(s) failed; see their runs"})
    tracker.finish(parent, "FAILED" if failed else "FINISHED")
    log.info(
        "sweep %s: %d run(s), %d configuration(s), champion %s",
        sweep_id, len(rows), len(decision.configs), f"v{champion}" if champion else "none",
    )  # fmt: skip
    judged = [dataclasses.replace(r, sweep_verdict=verdicts.get(r.run_id, r.sweep_verdict)) for r in rows]
    return SweepOutcome(sweep_id, judged, decision, url)


def registered_here(registry: Registry, rows: list[JobRow]) -> list[JobRow]:
    """The rows, each with its own run's version in the sweep's registered model, found by run id
    (`Registry.versions_of_runs`), or none: a version number read from a run's tag may be another
    model's, and the sweep step moves only versions of the runs it judges. A run without a version
    here (registered in another model by a store older than reuse keyed on the model) is judged,
    but nothing of the registry moves for it."""
    versions = registry.versions_of_runs({r.run_id for r in rows})
    for r in rows:
        if r.model_version and versions.get(r.run_id) != r.model_version:
            log.warning(
                "sweep step: run %s has no version of %s (its tag names v%s of %s): judged, never moved",
                r.run_id, registry.name, r.model_version, r.registered_model or "another model",
            )  # fmt: skip
    return [dataclasses.replace(r, model_version=versions.get(r.run_id, "")) for r in rows]


def current_rows(rows: list[JobRow]) -> list[JobRow]:
    """One row per (configuration, seed): its newest FINISHED run, else its newest run (rows oldest
    first). A rerun that finished replaces the failed or killed attempts before it, and a forced
    rerun replaces the earlier finished one, so neither counts twice."""
    latest: dict[tuple[str, int | None], JobRow] = {}
    for r in rows:
        key = (r.config_hash, r.seed)
        if key not in latest or r.finished or not latest[key].finished:
            latest[key] = r
    kept = {id(r) for r in latest.values()}
    dropped = len(rows) - len(kept)
    if dropped:
        log.info("sweep step: %d earlier attempt(s) replaced by a later run of the same job", dropped)
    return [r for r in rows if id(r) in kept]


def _trials(rows: list[JobRow]) -> int:
    """Hypotheses the sweep's test slices judge, for the deflated Sharpe ratio: every configuration
    tried (finished or not) counts once, a search's configurations (`searched`) once in all (its
    pick). Choices made on validation, such as a run's training length, are not trials on test."""
    configs = {r.config_hash for r in rows if not searched(r)}
    return len(configs) + any(searched(r) for r in rows)


def searched(row: JobRow) -> bool:
    """A configuration of a search: a weekly member trained from scratch (a role, no parent)."""
    return bool(row.role) and not row.parent_version


def _why(sweep_id: str, decision: SweepDecision) -> dict[str, str]:
    """Per model version: why the sweep step moves it (its configuration's verdict and reason)."""
    why = {
        r.model_version: f"sweep {sweep_id}: {c.verdict} ({c.reason})"
        for c in decision.configs
        for r in c.runs
    }
    if decision.champion:
        best = next(c for c in decision.configs if c.candidate is decision.champion)
        why[decision.champion.model_version] = (
            f"sweep {sweep_id}: champion (configuration {best.label}, {best.reason})"
        )
    return why


def _records(tracker: Tracker, rows: list[JobRow]) -> tuple[list[JobRow], list[RunRecord]]:
    """The finished runs as sweep-gate records; a run whose recorded curves are gone is skipped
    (its row says so, with sweep verdict `skipped`) instead of stopping the sweep step."""
    out_rows, records = [], []
    for row in rows:
        if row.finished:
            try:
                records.append(_record(tracker, row))
            except MissingArtifactError as exc:
                log.warning("sweep step: skipping %s: %s", row.run_name, exc)
                row = dataclasses.replace(row, sweep_verdict=SKIPPED, error=f"skipped: {exc}")
                tracker.handle(row.run_id).set_tags({T.SWEEP_VERDICT: SKIPPED})
        out_rows.append(row)
    return out_rows, records


def _record(tracker: Tracker, row: JobRow) -> RunRecord:
    """What the sweep gates need of a finished run: its recorded verdicts and its test returns."""
    curves = queries.agent_test_curves(tracker.client, row.run_id, row.artifact_uri)
    returns = [per_bar_returns(c) for c in curves]
    return RunRecord(
        run_id=row.run_id,
        config_hash=row.config_hash,
        seed=row.seed if row.seed is not None else -1,
        run_verdict=row.verdict,
        test=row.test,
        classification=row.classification,
        deployment=row.deployment,
        returns=np.concatenate(returns) if returns else np.array([]),
        model_version=row.model_version,
        label=row.label,
        regimes_missing=row.regimes_missing,
        promotable=row.promotable,
        validation=row.validation,
        search=searched(row),
    )


def _parent_metrics(rows: list[JobRow], d: SweepDecision) -> dict[str, float]:
    return {
        "sweep/runs": float(len(rows)),
        "sweep/failed_runs": float(sum(not r.finished for r in rows)),
        "sweep/configurations": float(len(d.configs)),
        "sweep/promoted_configurations": float(sum(c.verdict == "promote" for c in d.configs)),
        "sweep/pbo": d.pbo.pbo if d.pbo else math.nan,
    }
