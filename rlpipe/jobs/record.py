"""What a job records on its run: config and environment first, its data, the assessment (metrics, the
run report, equity curves, verdict tags, description; the tear sheets are drawn later from the report
and curves, `jobs.tear_sheet_job`), timings, and the policy registered."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents.setup import environment_info
from rlpipe.envs.layout import layout_of
from rlpipe.envs.sim_config import SimConfig
from rlpipe.evaluation.assessment import Assessment
from rlpipe.evaluation.backtest import AGENT, curves_frame
from rlpipe.gates.selection import LengthChoice
from rlpipe.jobs.learn import Learned
from rlpipe.jobs.lineage import Parent
from rlpipe.jobs.prepare import Prepared
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.state_folder import Saved
from rlpipe.policy.logged import log_policy
from rlpipe.reports.run_report import ModelCard, RunReportInput, build_report, run_note
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import RunLog
from rlpipe.types import JsonDict


@dataclass
class Stopwatch:
    """A job's wall clock from its start, and the parts of it spent outside `learn()`: what the
    job's `time/part/<name>_s` metrics say (setup: its folder, the reaper, the reuse query and the
    run opened; start: config and environment recorded; data; evaluation; record: the assessment
    logged; registry)."""

    start: float = field(default_factory=time.perf_counter)
    parts: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def part(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t

    def lap(self, name: str) -> None:
        """Everything since the start that no part has claimed yet, as part `name`."""
        self.parts[name] = time.perf_counter() - self.start - sum(self.parts.values())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def record_data(run: RunLog, data: Prepared) -> None:
    """What the run's data was: its digest and calendar (tags), its bars and bars per year (metrics)."""
    run.set_tags({T.DATA_DIGEST: data.digest, T.CALENDAR: data.calendar.describe()})
    run.log_metrics({K.BARS_PER_YEAR: data.calendar.bars_per_year, K.BARS: float(len(data.df))})


def assessment_metrics(a: Assessment) -> dict[str, float]:
    """Metrics `slice/<slice>/<metric>`, `slice/<slice>/baseline_<policy>_total`, `<role>/<aggregate>`
    and `gate/<name>` (`rlpipe.tracking.metric_keys`)."""
    metrics = {
        K.per_slice(r.slice, k): v for r in a.results if r.policy == AGENT for k, v in r.metrics.items()
    }
    metrics.update(
        {K.baseline_total(r.slice, r.policy): r.metrics["total"] for r in a.results if r.policy != AGENT}
    )
    metrics.update({K.aggregate(role, k): v for role, agg in a.aggregates.items() for k, v in agg.items()})
    metrics.update({K.gate(g.name): float(g.passed) for g in a.gates})
    return metrics


def record_assessment(
    run: RunLog,
    a: Assessment,
    model: ModelCard,
    length: LengthChoice | None = None,
    plots: bool = True,
    select_metric: str | None = None,
) -> None:
    """Log an assessment's metrics (one value each, at step 0), report (with the training-length choice
    of a run that scored checkpoints), curves, verdict tags and the run's description (`select_metric`:
    the validation aggregate that ranks the run). With `plots` the tear sheets are tagged pending:
    `jobs.tear_sheet_job` draws them from the report and curves once the job is done."""
    run.log_metrics(assessment_metrics(a))
    report = RunReportInput(model, a.results, a.aggregates, a.gates, a.verdict, a.reason, a.decisions, length)
    md, js = build_report(report)
    run.log_text(md, "report/report.md")
    run.log_dict(js, "report/report.json")
    run.log_table(curves_frame(a.results), "curves/equity.parquet")  # what the tear sheets are drawn from
    run.set_tags(
        {
            **({T.TEAR_SHEETS: T.TEAR_SHEETS_PENDING} if plots else {}),
            T.VERDICT: a.verdict,
            T.VERDICT_REASON: a.reason,
            T.CLASSIFICATION: a.decisions["classification"],
            T.DEPLOYMENT: a.decisions["deployment"],
            T.REGIMES_MISSING: a.decisions["regimes_missing"],
            T.NOTE: run_note(report, select_metric),
        }
    )


def record_start(
    run: RunLog, config: JsonDict, ctx: RunContext, resolved: JsonDict, saved: Saved | None
) -> None:
    """What a run records first: its config and environment; a resumed run only says from where."""
    if saved is not None:
        run.set_tags({T.RESUMED_FROM: str(saved.num_timesteps)})
        return
    run.log_params({**config, **resolved})
    run.log_text(yaml.safe_dump(config, sort_keys=False), "config/config.yaml")
    run.log_text(yaml.safe_dump(list(ctx.overrides)), "config/overrides.yaml")
    run.log_dict(environment_info(str(resolved["device_resolved"])), "config/environment.json")


def record_times(run: RunLog, learned: Learned, timesteps: int, clock: Stopwatch) -> float:
    """How long the job took (`time/` metrics: learn, its checkpoint scoring, the overhead outside
    `learn()` and its parts), the steps it trained and the length it kept (tags); the overhead."""
    trained = timesteps - learned.resumed_from
    overhead_s = clock.elapsed() - learned.learn_s
    run.log_metrics(
        {
            f"{K.TIME}learn_s": learned.learn_s,
            f"{K.TIME}checkpoint_s": learned.checkpoint_s,
            f"{K.TIME}overhead_s": overhead_s,
            f"{K.TIME}train_steps_per_s": trained / max(learned.learn_s - learned.checkpoint_s, 1e-9),
            **{f"{K.TIME}part/{name}_s": s for name, s in clock.parts.items()},
        }
    )
    choice = learned.choice
    run.set_tags(
        {
            T.TRAINED_TIMESTEPS: str(learned.agent.num_timesteps),
            T.SELECTED_TIMESTEPS: str(choice.selected.timesteps if choice else timesteps),
            T.CANDIDATES: str(choice.candidates if choice else 1),
            T.LENGTH_RULE: choice.reason if choice else "no checkpoints: the last policy is kept",
        }
    )
    return overhead_s


def register_policy(
    registry: Registry,
    run: RunLog,
    env: SimConfig,
    seed: int,
    embargo: str,
    agent: BaseAlgorithm,
    data: Prepared,
    a: Assessment,
    parent: Parent | None = None,
    held: bool = False,
    lineage: dict[str, str] | None = None,
) -> str:
    """Log the policy (weights, architecture, feature statistics, env layout) and register it as a version.

    The sha256 of the policy's file manifest goes on the run and the version: a policy whose files
    no longer match it is refused on load.
    """
    own, validation = data.stamps_of("train"), data.stamps_of("validation")
    meta = {
        "algo": type(agent).__name__,
        "env_kind": layout_of(env.kind),
        "feature_stats": data.stats.to_dict(),
        "sim": env.__dict__,
        "bar_hours": data.market.hours_per_bar,
        "seed": seed,
        "config_hash": run.tags[T.CONFIG_HASH],
        "data_digest": data.digest,
        "embargo": embargo,
        "train_windows": own,
        "validation_windows": validation,
        "lineage_train_windows": (parent.trained_windows if parent else []) + own,
    }
    logged = log_policy(run, agent, meta, data.df)
    run.set_tags({T.POLICY_SHA256: logged.sha256, T.REGISTERED_MODEL: registry.name})
    tags = {k: run.tags[k] for k in (T.CONFIG_HASH, T.SEED, T.SWEEP_ID, T.PROMOTABLE)}
    if held:  # the forgetting guard: registered and judged, never a candidate for stages or aliases
        tags[T.PROMOTABLE] = "false"
    tags.update(lineage or {})  # the family tree, on the version too
    # Nothing moves here: stages and aliases are the sweep step's, once every seed is judged.
    return registry.register(
        logged.model, run.run_id, {T.VERDICT: a.verdict, T.POLICY_SHA256: logged.sha256, **tags}
    )
