"""One training job: data -> slices -> env -> learn -> backtest -> gates -> MLflow run and model version.

`TrainJob` is the whole specification (typed config groups, no Hydra); `run_train` runs it and
records everything through a `Tracker` bound to `job.tracking.uri`. A notebook can build a
`TrainJob` by hand and call `run_train(job)`.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents.callbacks import ProgressCallback, history_logger
from rlpipe.agents.factory import AgentSpec
from rlpipe.agents.setup import (
    bound_threads,
    deterministic_policy,
    environment_info,
    resolve_device,
    seed_everything,
)
from rlpipe.data.slices import SliceSpec
from rlpipe.data.sources import DataSpec
from rlpipe.envs import kernels
from rlpipe.envs.factory import make_training_env
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import SimConfig
from rlpipe.evaluation.assessment import Assessment, assess
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.checks import check_train_job
from rlpipe.jobs.prepare import Prepared, prepare
from rlpipe.jobs.record import record_assessment, record_data
from rlpipe.jobs.spec import RunContext, as_config, config_hash
from rlpipe.project import git_sha
from rlpipe.reports.run_report import ModelCard
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import RegistryConfig, TrackingConfig
from rlpipe.tracking.policy import log_policy
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import RunLog, Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainJob:
    """Everything one training job needs (the config groups of conf/train.yaml, instantiated)."""

    seed: int
    timesteps: int
    device: str
    progress_bar: bool
    threads: int | None
    """torch/BLAS threads of the job; None: the usable cores / the launcher's parallel jobs."""
    data: DataSpec
    env: SimConfig
    reward: RewardConfig
    agent: AgentSpec
    slices: SliceSpec
    gates: GatesConfig
    tracking: TrackingConfig
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    """What the sweep step may do with the job's model version."""

    @property
    def label(self) -> str:
        """The configuration's readable name, the same for every seed: agent-env-reward-t<timesteps>."""
        return f"{self.agent.name}-{self.env.kind}-{self.reward.kind}-t{self.timesteps}"

    @property
    def run_name(self) -> str:
        return f"{self.label}-s{self.seed}"


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
        """The value a sweeper optimises: the validation score, never a test result (NaN when it
        is not finite, e.g. without validation slices)."""
        return float(self.validation_score) if np.isfinite(self.validation_score) else math.nan


def run_train(job: TrainJob, ctx: RunContext | None = None) -> TrainResult:
    """Run one job and record it (run, metrics, report, policy, model version)."""
    t_start = time.perf_counter()
    ctx = ctx or RunContext()
    check_train_job(job)  # bad values are refused before anything is recorded or trained
    threads = bound_threads(job.threads, ctx.parallel_jobs)
    device = resolve_device(job.device)
    config = as_config(job)
    chash = config_hash(config)
    tracker = Tracker.of(job.tracking)
    with tracker.run(job.run_name, _run_tags(job, ctx, tracker, chash)) as run:
        run.log_params({**config, "device_resolved": device, "threads_resolved": threads})
        run.log_text(yaml.safe_dump(config, sort_keys=False), "config/config.yaml")
        run.log_text(yaml.safe_dump(list(ctx.overrides)), "config/overrides.yaml")
        run.log_dict(environment_info(device), "config/environment.json")
        # Data and slices first: bad input and leaky slices fail before any training.
        data = prepare(job.data, job.slices)
        record_data(run, data)
        agent, learn_s = _learn(job, data, device, run)
        a = assess(data.market, job.env, data.df, data.slices, data.windows, job.slices, job.gates,
                   deterministic_policy(agent), job.seed)  # fmt: skip
        card = ModelCard(job.tracking.registered_model, job.seed, job.timesteps, job.env.kind,
                         job.reward.kind, job.agent.name, chash, run.run_id)  # fmt: skip
        record_assessment(run, a, card, step=job.timesteps)
        version = _register(Registry(tracker.client, job.tracking.registered_model), run, job, agent, data, a)
        overhead_s = time.perf_counter() - t_start - learn_s
        run.log_metrics(
            {
                "time/learn_s": learn_s,
                "time/overhead_s": overhead_s,
                "time/train_steps_per_s": job.timesteps / max(learn_s, 1e-9),
            }
        )
        run.set_tags({T.MODEL_VERSION: version})
    score = a.aggregates.get("validation", {}).get(job.gates.select_metric, math.nan)
    result = TrainResult(run.run_id, a.verdict, version, a.test.get("total", math.nan),
                         a.test.get("max_drawdown", math.nan), learn_s, overhead_s, chash, score)  # fmt: skip
    log.info(
        "%s  verdict=%s  test total after fees=%+.2f%%  max drawdown=%.2f%%  run=%s",
        job.run_name, result.verdict, 100 * result.test_total, 100 * result.test_max_drawdown, run.run_id,
    )  # fmt: skip
    return result


def _run_tags(job: TrainJob, ctx: RunContext, tracker: Tracker, chash: str) -> dict[str, str]:
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
    }
    parent = tracker.parent_run(ctx.sweep_id) if ctx.sweep_id else None
    if parent:
        tags["mlflow.parentRunId"] = parent  # nests the job under its sweep in the MLflow UI
    return tags


def _learn(job: TrainJob, data: Prepared, device: str, run: RunLog) -> tuple[BaseAlgorithm, float]:
    """Build the env and the agent from the job's seed, train, log SB3's scalars; returns (agent, seconds)."""
    kernels.warm_up()  # load or compile the simulator once, outside the timed learn()
    seed_everything(job.seed)
    env = make_training_env(data.market, job.env, job.reward, data.train_ranges, job.seed)
    agent = job.agent.build(env.venv, job.seed, device)
    logger, history = history_logger()
    agent.set_logger(logger)
    t_learn = time.perf_counter()
    beat = run.heartbeat()  # the reaper tells a live job from a dead one by it

    def on_progress(progress: float) -> None:
        env.set_progress(progress)
        beat()

    agent.learn(
        total_timesteps=job.timesteps,
        callback=ProgressCallback(job.timesteps, job.progress_bar, job.run_name, on_progress),
    )
    learn_s = time.perf_counter() - t_learn
    run.log_metric_series(history.points)
    return agent, learn_s


def _register(
    registry: Registry, run: RunLog, job: TrainJob, agent: BaseAlgorithm, data: Prepared, a: Assessment
) -> str:
    """Log the policy (weights, architecture, feature statistics, env layout) and register it as a version.

    The sha256 of the policy's file manifest goes on the run and the version: a policy whose files
    no longer match it is refused on load.
    """
    meta = {
        "algo": type(agent).__name__,
        "env_kind": "management" if job.env.kind == "management" else "baseline",
        "feature_stats": data.stats.to_dict(),
        "sim": job.env.__dict__,
        "bar_hours": data.market.hours_per_bar,
        "seed": job.seed,
        "config_hash": run.tags[T.CONFIG_HASH],
        "data_digest": data.digest,
        "embargo": job.slices.embargo,
        "train_windows": [[str(w.slice.start), str(w.slice.end)] for w in data.windows_of("train")],
    }
    logged = log_policy(run, agent, meta, data.df)
    run.set_tags({T.POLICY_SHA256: logged.sha256})
    tags = {k: run.tags[k] for k in (T.CONFIG_HASH, T.SEED, T.SWEEP_ID, T.PROMOTABLE)}
    # Nothing moves here: stages and aliases are the sweep step's, once every seed is judged.
    return registry.register(
        logged.model, run.run_id, {T.VERDICT: a.verdict, T.POLICY_SHA256: logged.sha256, **tags}
    )
