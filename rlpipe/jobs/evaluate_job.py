"""Re-evaluate a logged or registered policy on other slices or other data, as a new MLflow run.

The policy is loaded from the job's store with the feature statistics and the fill/fee model it
was trained with. On the data it was trained on (same data digest), a validation or test window that
overlaps its training windows plus their embargo is refused before anything runs.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pandas as pd

from rlpipe.data.slices import Slice, check_no_leakage, recorded_training
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import SliceError
from rlpipe.evaluation.assessment import assess
from rlpipe.jobs.job_config import EvaluateJob
from rlpipe.jobs.prepare import Guard, prepare
from rlpipe.jobs.record import record_assessment, record_data
from rlpipe.jobs.spec import as_config
from rlpipe.jobs.tear_sheet_job import draw_after_job
from rlpipe.policy.resolved import ModelRef, load_policy, resolve_model
from rlpipe.reports.run_report import ModelCard
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from rlpipe.types import JsonDict, Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationResult:
    run_id: str
    verdict: str
    test: Metrics
    model_version: str | None


def run_evaluate(job: EvaluateJob) -> EvaluationResult:
    """Evaluate `job.model` on `job.data` / `job.slices`; returns the summary of the new run."""
    tracker = Tracker.of(job.tracking)
    ref = resolve_model(tracker, job.model)
    policy = load_policy(tracker, ref)
    meta = policy.meta
    tags = {
        T.KIND: T.EVALUATION,
        T.MODEL_URI: job.model,
        T.MODEL_NAME: ref.name or "",
        T.MODEL_VERSION: ref.version or "",
        T.SOURCE_RUN_ID: ref.run_id or "",
    }
    with tracker.run(f"evaluate-{ref.name or 'run'}-v{ref.version or ref.run_id}", tags) as run:
        run.log_params(as_config(job))
        data = prepare(job.data, job.slices, policy.stats, ("validation", "test"), _not_trained_on(job, meta))
        record_data(run, data)
        sim_cfg = SimConfig(**meta["sim"])
        a = assess(data.market, sim_cfg, data.df, data.slices, data.windows, job.slices, job.gates,
                   policy.observation_policy(), job.seed)  # fmt: skip
        card = ModelCard(ref.name or job.model, seed=meta.get("seed"), env=sim_cfg.kind, run_id=run.run_id,
                         version=ref.version, source_run=ref.run_id)  # fmt: skip
        record_assessment(run, a, card)
        draw_after_job(job.tracking, run, in_sweep=False)
    if ref.name and ref.version:
        Registry(tracker.client, ref.name).link_evaluation(ref.version, run.run_id)
    _log_summary(ref, len(data.slices), a.verdict, a.test, run.run_id)
    return EvaluationResult(run.run_id, a.verdict, a.test, ref.version)


def _not_trained_on(job: EvaluateJob, meta: JsonDict) -> Guard:
    """On the data the policy was trained on, refuse slices that overlap its training windows + embargo."""

    def guard(digest: str, slices: list[Slice]) -> None:
        if digest != meta.get("data_digest"):
            return
        trained = recorded_training(meta.get("train_windows", []), "model_train")
        try:
            check_no_leakage([*trained, *slices], pd.Timedelta(meta.get("embargo", job.slices.embargo)))
        except SliceError as exc:
            raise SliceError(f"{job.model} was trained on this data: {exc}") from exc

    return guard


def _log_summary(ref: ModelRef, n_slices: int, verdict: str, test: Metrics, run_id: str) -> None:
    log.info(
        "%s on %d slice(s): verdict=%s  positive folds %.0f/%.0f  test total %+.2f%%  run=%s",
        ref.uri, n_slices, verdict, test.get("positive_slices", 0), test.get("slices", 0),
        100 * test.get("total", math.nan), run_id,
    )  # fmt: skip
