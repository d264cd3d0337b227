"""One population member for one round (`experiment=pbt`; the plan is `rlpipe.jobs.pbt_population`).

Round 0 opens the member's MLflow run; every round reopens it, continues the member's saved
training state (its own, or the copy the sweeper gave it) for `interval` steps with this round's
hyperparameters, scores it on the validation slices, saves the state and logs the round
(`pbt/validation/<aggregate>` and `pbt/<hyperparameter>` stepped by round). Only the last round
touches the test slices: it assesses, gates and registers the member like any job
(`train_job.conclude`), and ends the run. Between rounds the run stays RUNNING; a killed sweep
leaves it to the reaper, and the resumed sweep reopens it.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from rlpipe.agents.checkpoint_io import load_state, save_state
from rlpipe.agents.setup import bound_threads, deterministic_policy, resolve_device, seed_everything
from rlpipe.envs import kernels
from rlpipe.envs.training_env import make_training_env
from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.evaluation.assessment import validate
from rlpipe.jobs.checks import check_train_job
from rlpipe.jobs.job_config import PBTRound, TrainJob
from rlpipe.jobs.learn import Learned, progress_callback
from rlpipe.jobs.pbt_population import STATE, Copy, MemberState, PBTSpec
from rlpipe.jobs.prepare import Prepared, prepare
from rlpipe.jobs.record import Stopwatch, record_data, record_start
from rlpipe.jobs.spec import RunContext, as_config, config_hash
from rlpipe.jobs.train_job import conclude, run_tags
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.tracker import RunLog, Tracker

log = logging.getLogger(__name__)
ENV_SEED_STRIDE = 10_007
"""Round r's episodes are drawn with the member's seed + r x this (a new stream every round)."""


def run_round(job: TrainJob, ctx: RunContext | None = None) -> float:
    """Train `job.kind.pbt.member` through round `job.kind.pbt.round`; returns its validation score (what the
    PBT sweeper ranks members by). A round the member already finished is not trained again."""
    clock = Stopwatch()
    assert isinstance(job.kind, PBTRound), "run_round needs a PBT round (job.kind)"
    ctx, spec = ctx or RunContext(), job.kind.pbt
    spec.check()
    check_train_job(job)
    root = Path(spec.dir)
    mine = MemberState.read(root, spec.member)
    if mine is not None and mine.round >= spec.round:
        log.info("%s: round %d already done (validation %.4f)", job.run_name, spec.round, mine.score)
        return mine.score
    if spec.round > 0 and mine is None:
        raise CheckpointError(
            f"PBT member {spec.member} has no state from round {spec.round - 1} in {root}; continue the "
            "population with resume=true in its own hydra.sweep.dir, or start a new one"
        )
    tracker = Tracker.of(job.tracking)
    threads = bound_threads(job.threads, ctx.parallel_jobs)
    device = resolve_device(job.device)
    config = as_config(job)
    tags = {**run_tags(job, ctx, tracker, config_hash(config)), T.ROLE: f"pbt-{spec.member}"}
    with tracker.run(job.run_name, tags, resume_id=mine.run_id if mine else None, end=spec.final) as run:
        if mine is None:
            record_start(run, config, ctx, {"device_resolved": device, "threads_resolved": threads}, None)
        data = prepare(job.data, job.slices)
        if mine is None:
            record_data(run, data)
        learned = _train(job, spec, data, device, run, root, mine)
        metrics = validate(data.market, job.env, data.windows, deterministic_policy(learned.agent), job.seed)
        score = float(metrics.get(job.gates.select_metric, math.nan))
        run.log_metric_series(
            [(f"pbt/validation/{k}", float(v), spec.round) for k, v in metrics.items()]
            + [(f"pbt/{k}", v, spec.round) for k, v in hyperparameters(job, spec).items()]
        )
        sha = save_state(learned.agent, MemberState.folder(root, spec.member) / STATE)
        times = {"pbt/time/learn_s": learned.learn_s, "pbt/time/round_s": clock.elapsed()}
        run.log_metric_series([(k, v, spec.round) for k, v in times.items()])  # before the last round's tail
        if spec.final:
            conclude(run, job, tracker, data, learned, None, clock)
            # the member was chosen on validation at every round: trials for the deflated Sharpe
            run.set_tags({T.CANDIDATES: str(spec.rounds)})
        MemberState(run.run_id, sha, spec.round, score).save(root, spec.member)
    log.info("%s: round %d validation %s = %.4f", job.run_name, spec.round, job.gates.select_metric, score)
    return score


def record_copies(tracking: TrackingConfig, root: Path, copies: list[Copy], metric: str) -> None:
    """Each copy on the receiving member's run: a tag naming the source's run and scores, and
    `pbt/copied_from` (the source member) at that round."""
    tracker = Tracker.of(tracking)
    for c in copies:
        member, source = MemberState.read(root, c.member), MemberState.read(root, c.source)
        assert member is not None and source is not None
        run = tracker.handle(member.run_id)
        run.set_tags({f"{T.PBT_COPY_PREFIX}{c.round}": f"{c.text(metric)} (run {source.run_id})"})
        run.log_metric_series([("pbt/copied_from", float(c.source), c.round)])


def hyperparameters(job: TrainJob, spec: PBTSpec) -> dict[str, float]:
    """The values of the mutated hyperparameters (`agent.<keyword>`) this round trains with."""
    out = {}
    for key in spec.mutate:
        value: Any = job.agent.kwargs.get(key.removeprefix("agent."))
        if not key.startswith("agent.") or not isinstance(value, int | float):
            raise ConfigError(f"pbt.mutate: {key!r} is not a numeric agent keyword of this job's agent")
        out[key] = float(value)
    return out


def _train(
    job: TrainJob,
    spec: PBTSpec,
    data: Prepared,
    device: str,
    run: RunLog,
    root: Path,
    mine: MemberState | None,
) -> Learned:
    """`interval` more steps from the member's saved state (none in round 0)."""
    kernels.warm_up()
    seed_everything(job.seed + spec.round)
    env = make_training_env(data.market, job.env, job.reward, data.train_ranges,
                            job.seed + ENV_SEED_STRIDE * spec.round)  # fmt: skip
    agent = job.agent.build(env.venv, job.seed, device)
    folder = MemberState.folder(root, spec.member)
    folder.mkdir(parents=True, exist_ok=True)
    if mine:  # a new round trains on new episodes: the network, optimizer and step counter go on
        load_state(agent, folder / STATE, mine.sha256, exact=False)
    start = agent.num_timesteps
    t0 = time.perf_counter()
    progress = progress_callback(job, env, run, spec.interval * spec.rounds)
    agent.learn(spec.interval, [progress], reset_num_timesteps=start == 0)
    return Learned(agent, time.perf_counter() - t0, 0.0, None, start)
