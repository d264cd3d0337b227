"""One population member for one round (`experiment=pbt`; the plan is `rlpipe.jobs.pbt_population`).

Round 0 opens the member's MLflow run; every round reopens it, continues the member's saved
training state (its own, or the copy the sweeper gave it) for `interval` steps with this round's
hyperparameters through the jobs' own training path (`rlpipe.jobs.learn.learn`, with this round's
`Budget` and a non-exact `Start`: new episodes every round), scores it on the validation slices,
logs the round (`pbt/validation/<aggregate>` and `pbt/<hyperparameter>` stepped by round) and saves
the state into the member's state folder, its manifest last (the round is done once it says so).
Only the last round touches the test slices: it assesses, gates and registers the member like any
job (`train_job.conclude`), and ends the run. Between rounds the run stays RUNNING; a killed sweep
leaves it to the reaper, and the resumed sweep reopens it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from rlpipe.agents.setup import bound_threads, deterministic_policy, resolve_device
from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.evaluation.assessment import validate
from rlpipe.jobs.checkpoints import save_agent
from rlpipe.jobs.checks import check_train_job
from rlpipe.jobs.job_config import PBTRound, TrainJob
from rlpipe.jobs.learn import Budget, Start, learn
from rlpipe.jobs.pbt_population import Copy, PBTSpec, member_folder
from rlpipe.jobs.prepare import prepare
from rlpipe.jobs.record import Stopwatch, record_data, record_start
from rlpipe.jobs.spec import RunContext, as_config, config_hash
from rlpipe.jobs.state_folder import Saved
from rlpipe.jobs.train_job import conclude, run_tags
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
ENV_SEED_STRIDE = 10_007
"""Round r's episodes are drawn with the member's seed + r x this (a new stream every round)."""


def run_round(job: TrainJob, ctx: RunContext | None = None) -> float:
    """Train `job.kind.pbt.member` through round `job.kind.pbt.round`; returns its validation score (what
    the PBT sweeper ranks members by). A round the member already finished is not trained again."""
    clock = Stopwatch()
    assert isinstance(job.kind, PBTRound), "run_round needs a PBT round (job.kind)"
    ctx, spec = ctx or RunContext(), job.kind.pbt
    spec.check()
    check_train_job(job)
    root = Path(spec.dir)
    folder = member_folder(root, spec.member)
    mine = folder.read()  # a corrupt manifest is refused here
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
    tags = run_tags(job, ctx, tracker, config_hash(config))  # the kind tags the member's role
    with tracker.run(job.run_name, tags, resume_id=mine.run_id if mine else None, end=spec.final) as run:
        if mine is None:
            record_start(run, config, ctx, {"device_resolved": device, "threads_resolved": threads}, None)
        data = prepare(job.data, job.slices)
        if mine is None:
            record_data(run, data)
        start = Start.of(folder, mine, exact=False)  # a new round trains on new episodes
        learned = learn(job, data, device, run, None, start, budget=round_budget(job, spec))
        metrics = validate(data.market, job.env, data.windows, deterministic_policy(learned.agent), job.seed)
        score = float(metrics.get(job.gates.select_metric, math.nan))
        run.log_metric_series(
            [(f"pbt/validation/{k}", float(v), spec.round) for k, v in metrics.items()]
            + [(f"pbt/{k}", v, spec.round) for k, v in hyperparameters(job, spec).items()]
        )
        times = {"pbt/time/learn_s": learned.learn_s, "pbt/time/round_s": clock.elapsed()}
        run.log_metric_series([(k, v, spec.round) for k, v in times.items()])  # before the last round's tail
        if spec.final:
            conclude(run, job, tracker, data, learned, None, clock)
            # the member was chosen on validation at every round: trials for the deflated Sharpe
            run.set_tags({T.CANDIDATES: str(spec.rounds)})
        save_agent(folder, learned.agent, Saved(run.run_id, 0, None, round=spec.round, score=score))
    log.info("%s: round %d validation %s = %.4f", job.run_name, spec.round, job.gates.select_metric, score)
    return score


def record_copies(tracking: TrackingConfig, root: Path, copies: list[Copy], metric: str) -> None:
    """Each copy on the receiving member's run: a tag naming the source's run and scores, and
    `pbt/copied_from` (the source member) at that round."""
    tracker = Tracker.of(tracking)
    for c in copies:
        member, source = member_folder(root, c.member).read(), member_folder(root, c.source).read()
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


def round_budget(job: TrainJob, spec: PBTSpec) -> Budget:
    """Round r: `interval` more steps, generators seeded by the member's seed + r, episodes drawn with
    its seed + r x `ENV_SEED_STRIDE`, the progress counted over the population's whole length."""
    return Budget(job.seed + spec.round, job.seed + ENV_SEED_STRIDE * spec.round,
                  spec.interval * spec.rounds, spec.interval)  # fmt: skip
