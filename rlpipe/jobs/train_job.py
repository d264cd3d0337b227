"""One training job: data -> slices -> env -> learn -> backtest -> gates -> MLflow run and model version.

`TrainJob` (`rlpipe.jobs.job_config`) is the whole specification (typed config groups, no Hydra);
`run_train` runs it and records everything through a `Tracker` bound to `job.tracking.uri`. A
notebook can build a `TrainJob` by hand and call `run_train(job)`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np

from rlpipe.agents.setup import bound_threads, deterministic_policy, resolve_device
from rlpipe.data.sources import data_digest, load_data
from rlpipe.evaluation.assessment import assess
from rlpipe.jobs.checkpoints import JobFolder
from rlpipe.jobs.checks import check_train_job
from rlpipe.jobs.continuation import record_guard
from rlpipe.jobs.job_config import TrainJob
from rlpipe.jobs.job_owner import watch_launcher
from rlpipe.jobs.learn import Learned, Start, learn
from rlpipe.jobs.lineage import Parent, lineage_tags, load_parent, not_trained_by_ancestors
from rlpipe.jobs.naming import varied_values
from rlpipe.jobs.prepare import Prepared, prepare
from rlpipe.jobs.record import (
    Stopwatch,
    record_assessment,
    record_data,
    record_start,
    record_times,
    register_policy,
)
from rlpipe.jobs.spec import RunContext, as_config, config_hash
from rlpipe.jobs.tear_sheet_job import draw_after_job, drawing_beside_next_job
from rlpipe.project import git_sha
from rlpipe.reports.run_report import ModelCard
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.reaper import reap_job
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import RunLog, Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished job reports back (the rest is in its MLflow run)."""

    run_id: str
    verdict: str
    model_version: str
    test_total: float
    test_max_drawdown: float
    learn_s: float
    overhead_s: float
    config_hash: str
    validation_score: float = math.nan
    """`validation/<gates.select_metric>`: NaN without validation slices."""

    @property
    def sweep_metric(self) -> float:
        """What a sweeper optimises: the validation score, never a test result (NaN if not finite)."""
        return float(self.validation_score) if np.isfinite(self.validation_score) else math.nan


def run_train(job: TrainJob, ctx: RunContext | None = None) -> TrainResult:
    """Run one job and record it (run, metrics, report, policy, model version). A FINISHED run of the
    same configuration, seed and code is reused instead (`force=true` trains again); `resume=true`
    continues the job's checkpointed run (`rlpipe.jobs.checkpoints`).

    The job first claims its folder (`rlpipe.jobs.job_owner`): a copy of it still running is refused
    before anything is read, cleared, reused or recorded, and its dead predecessors are closed."""
    clock = Stopwatch()
    ctx = ctx or RunContext()
    check_train_job(job)  # bad values are refused before anything is recorded or trained
    tracker = Tracker.of(job.tracking)
    continued = job.kind.continued
    parent = load_parent(tracker, continued.init_from) if continued else None
    if parent is not None:  # the record names the version an alias pointed at when the job ran
        job = dataclasses.replace(job, kind=job.kind.continuing(parent.uri))
    if ctx.sweep_id and not job.varied:  # its run name leads with what its sweep varies
        job = dataclasses.replace(
            job, varied=varied_values(ctx.overrides, queries.swept(tracker, ctx.sweep_id))
        )
    chash = config_hash(as_config(job))
    store = f"{job.tracking.uri}|{job.tracking.experiment}"
    folder = JobFolder(ctx.root / job.checkpoint.dir, chash, job.seed, store, job.run_name)
    folder.claim()
    try:
        with watch_launcher():
            reap_job(tracker, chash, job.seed, job.run_name)
            return _run_claimed(job, ctx, tracker, folder, parent, clock)
    finally:
        folder.release()


def jobs_at_once(job: TrainJob, ctx: RunContext) -> int:
    """The processes a job's `threads=null` shares the cores with: its launcher's jobs running at once,
    and the drawing of its tear sheets beside the next one (`drawing_beside_next_job`)."""
    return ctx.parallel_jobs + drawing_beside_next_job(job.plots, bool(ctx.sweep_id))  # as `T.SWEEP_ID`


def _run_claimed(
    job: TrainJob, ctx: RunContext, tracker: Tracker, folder: JobFolder, parent: Parent | None,
    clock: Stopwatch,
) -> TrainResult:  # fmt: skip
    """The job, once its folder is this process's: reuse, resume or start afresh, train, conclude."""
    threads = bound_threads(job.threads, jobs_at_once(job, ctx))
    device = resolve_device(job.device)
    config = as_config(job)
    chash = config_hash(config)
    tags = run_tags(job, ctx, tracker, chash)
    reused = None if job.force else _reuse(tracker, job, ctx, chash, tags[T.GIT_SHA])
    if reused is not None:
        return reused
    saved = folder.read() if job.resume else None  # a corrupt checkpoint is refused here
    if saved is None:
        folder.clear()  # a fresh run: an older checkpoint of this job is not continued
    with tracker.run(job.run_name, tags, resume_id=saved.run_id if saved else None) as run:
        folder.record_run(run.run_id)  # from now on a resume reopens this run, even before a state
        clock.lap("setup")
        with clock.part("start"):
            record_start(run, config, ctx, {"device_resolved": device, "threads_resolved": threads}, saved)
        with clock.part("data"):  # data and slices first: bad input and leaky slices fail before training
            guard = not_trained_by_ancestors(parent, job.slices.embargo) if parent else None
            data = prepare(job.data, job.slices, parent.stats if parent else None, guard=guard)
            record_data(run, data)
        with clock.part("agent"):  # the env, the agent and its states around SB3's learn (taken out below)
            learned = learn(job, data, device, run, folder, Start.of(folder, saved), parent)
        clock.parts["agent"] -= learned.learn_s
        result = conclude(run, job, tracker, data, learned, parent, clock)
    folder.clear()
    return result


def conclude(
    run: RunLog, job: TrainJob, tracker: Tracker, data: Prepared, learned: Learned, parent: Parent | None,
    clock: Stopwatch,
) -> TrainResult:  # fmt: skip
    """The end of a job after training: test slices and gates, the forgetting guard, the report,
    lineage, the policy registered as a model version, timings."""
    with clock.part("evaluation"):
        a = assess(data.market, job.env, data.df, data.slices, data.windows, job.slices, job.gates,
                   deterministic_policy(learned.agent), job.seed)  # fmt: skip
        held = record_guard(run, learned.family, job.gates, a, job.run_name)
    length = learned.choice.selected.timesteps if learned.choice else job.timesteps
    chash = run.tags[T.CONFIG_HASH]
    card = ModelCard(job.tracking.registered_model, job.seed, length, job.env.kind, job.reward.kind,
                     job.agent.name, chash, run.run_id, generation=parent.generation + 1 if parent else 0,
                     parent=parent.uri if parent else None)  # fmt: skip
    with clock.part("record"):
        record_assessment(run, a, card, learned.choice, job.plots, job.gates.select_metric)
        lineage = lineage_tags(parent, length)
        run.set_tags(lineage)
    with clock.part("registry"):
        registry = Registry(tracker.client, job.tracking.registered_model)
        version = register_policy(registry, run, job.env, job.seed, job.slices.embargo, learned.agent, data,
                                  a, parent, held, lineage)  # fmt: skip
    overhead_s = record_times(run, learned, job.timesteps, clock)
    run.set_tags({T.MODEL_VERSION: version})
    if job.plots:
        draw_after_job(job.tracking, run, in_sweep=run.tags[T.SWEEP_ID] != T.SINGLE)
    score = a.aggregates.get("validation", {}).get(job.gates.select_metric, math.nan)
    total, drawdown = a.test.get("total", math.nan), a.test.get("max_drawdown", math.nan)
    result = TrainResult(
        run.run_id, a.verdict, version, total, drawdown, learned.learn_s, overhead_s, chash, score
    )
    log.info(
        "%s  verdict=%s  test total after fees=%+.2f%%  max drawdown=%.2f%%  run=%s",
        job.run_name, result.verdict, 100 * result.test_total, 100 * result.test_max_drawdown, run.run_id,
    )  # fmt: skip
    return result


def _reuse(tracker: Tracker, job: TrainJob, ctx: RunContext, chash: str, code: str) -> TrainResult | None:
    """The result of an earlier FINISHED run of this configuration and seed from the same code on
    the same data, registered in the same model with the same `registry.promote`, counted in this
    sweep instead of a rerun; None when there is none (or no checkout says what the code is).
    A run registered in another model is not reused: its version belongs to that model's history
    and verdicts, so this job trains and registers its own (`queries.finished_job`)."""
    found = code != "unknown"
    row = queries.finished_job(tracker, chash, job.seed, code, job.tracking.registered_model,
                               job.registry.promote) if found else None  # fmt: skip
    if row is None:
        return None
    if row.data_digest != data_digest(load_data(job.data)):
        log.info("%s: the data changed since FINISHED run %s of this configuration and seed: training again",
                 job.run_name, row.run_id)  # fmt: skip
        return None
    if ctx.sweep_id and row.sweep_id != ctx.sweep_id:
        tracker.handle(row.run_id).set_tags({f"{T.REUSED_PREFIX}{ctx.sweep_id}": "true"})
    log.info("%s: reusing FINISHED run %s of the same configuration, seed and code (force=true trains again)",
             job.run_name, row.run_id)  # fmt: skip
    score = row.validation.get(job.gates.select_metric, math.nan)
    return TrainResult(row.run_id, row.verdict, row.model_version, row.test_metric("total"),
                       row.test_metric("max_drawdown"), 0.0, 0.0, row.config_hash, score)  # fmt: skip


def run_tags(job: TrainJob, ctx: RunContext, tracker: Tracker, chash: str) -> dict[str, str]:
    tags = {
        T.SWEEP_ID: ctx.sweep_id or T.SINGLE,
        T.CONFIG_HASH: chash,
        T.CONFIG_LABEL: job.label,
        T.GIT_SHA: git_sha(ctx.root),
        T.AGENT: job.agent.name,
        T.ENV: job.env.kind,
        T.REWARD: job.reward.kind,
        T.SEED: str(job.seed),
        T.KIND: T.JOB,
        T.PROMOTABLE: str(job.registry.promote).lower(),
        **job.kind.tags(),
    }
    parent = tracker.parent_run(ctx.sweep_id) if ctx.sweep_id else None
    if parent:
        tags["mlflow.parentRunId"] = parent  # nests the job under its sweep in the MLflow UI
    return tags
