"""Train an agent: env and agent from the job's seed, learn (continuing a saved state when given),
score the candidate lengths on validation and keep one (`rlpipe.gates.selection`).

The one training path: a job (`rlpipe.jobs.train_job`) and a PBT round (`rlpipe.jobs.pbt_job`) both
call `learn`; what differs between them is a `Budget` (seeds, steps, candidate lengths) and a `Start`
(the saved state continued, exactly or not)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.agents.checkpoint_io import load_state, restore_policy
from rlpipe.agents.setup import deterministic_policy, seed_everything
from rlpipe.agents.training_callbacks import ProgressCallback, RolloutHook, history_logger
from rlpipe.data.slices import Window
from rlpipe.envs import kernels
from rlpipe.envs.training_env import TrainingEnv, make_training_env
from rlpipe.evaluation.assessment import validate
from rlpipe.gates.selection import LengthChoice, select_length
from rlpipe.jobs.checkpoints import Checkpointer, JobFolder
from rlpipe.jobs.continuation import Family, guard_windows, training_mix
from rlpipe.jobs.job_config import TrainJob
from rlpipe.jobs.lineage import Parent, learning_rate, warm_start
from rlpipe.jobs.prepare import Prepared
from rlpipe.jobs.state_folder import Saved, StateFolder
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking.tracker import RunLog

LR_USED = "agent.learning_rate_used"
"""Param of a continued model's run: the learning rate it trained with (the agent's x lr_multiplier)."""


@dataclass(frozen=True)
class Learned:
    """A trained agent (holding the kept checkpoint's weights), its timings and its length choice."""

    agent: BaseAlgorithm
    learn_s: float
    """Seconds in learn(), checkpoint scoring included."""
    checkpoint_s: float
    """Seconds of that spent scoring checkpoints on validation."""
    choice: LengthChoice | None
    """None without `lengths`: the last policy is kept."""
    resumed_from: int
    """The steps of the state it continued (0 from scratch): a resumed job's, a PBT member's last round's."""
    family: Family | None = None
    """A continued model's data mix and forgetting-guard scores (None: trained from scratch)."""


@dataclass(frozen=True)
class Budget:
    """What one call of `learn` trains: its seeds, its steps and the candidate lengths it scores.
    `Budget.of(job)` is a job's; a PBT round's (`rlpipe.jobs.pbt_job.round_budget`) seeds its
    generators and episodes by round and trains `more` steps."""

    seed: int
    """Seeds Python's, NumPy's and torch's generators (`seed_everything`)."""
    env_seed: int
    """Seeds the training env's episodes."""
    total: int
    """The whole training's length: the progress callback's (and the reward curriculum's) 100 %."""
    more: int | None = None
    """The steps this call trains; None: up to `total` from the state it starts from."""
    lengths: tuple[int, ...] = ()
    """The candidate lengths scored on validation, one kept (empty: the last policy is kept)."""

    @classmethod
    def of(cls, job: TrainJob) -> Budget:
        """The job's seed, to `job.timesteps`, scoring `job.lengths` and `job.timesteps`."""
        lengths = tuple(sorted({*job.lengths, job.timesteps})) if job.lengths else ()
        return cls(job.seed, job.seed, job.timesteps, None, lengths)


@dataclass(frozen=True)
class Start:
    """A saved training state to continue: its folder and manifest, restored `exact`ly (a resumed job:
    every generator, the env, SB3's rollout position) or not (a PBT round: the network, the optimizer,
    the step counters and torch's generator; new episodes)."""

    folder: StateFolder
    saved: Saved
    exact: bool = True

    @classmethod
    def of(cls, folder: StateFolder, saved: Saved | None, exact: bool = True) -> Start | None:
        """None when `saved` names no state (nothing saved, or a job stopped before its first state)."""
        return cls(folder, saved, exact) if saved is not None and saved.state_sha256 is not None else None


def learn(
    job: TrainJob,
    data: Prepared,
    device: str,
    run: RunLog,
    folder: JobFolder | None,
    start: Start | None,
    parent: Parent | None = None,
    budget: Budget | None = None,
) -> Learned:
    """Train `job`'s agent as far as `budget` says (default: `Budget.of(job)`), from `parent`'s weights,
    continuing `start` when given, saving resumable states into `folder` when given; keep a length."""
    budget = budget or Budget.of(job)
    kernels.warm_up()  # load or compile the simulator once, outside the timed learn()
    seed_everything(budget.seed)
    continued = job.kind.continued
    mix = (
        training_mix(continued.continuation, parent, data.train_ranges, data.df.index, job.env)
        if parent and continued
        else None
    )
    ranges, shares = (mix.ranges, mix.shares) if mix else (data.train_ranges, None)
    env = make_training_env(data.market, job.env, job.reward, ranges, budget.env_seed, shares)
    agent = _agent_spec(job, parent).build(env.venv, job.seed, device)
    logger, history = history_logger()
    agent.set_logger(logger)
    timer = _Timer(agent, data, job)
    family, on_guard = None, None
    if parent and mix:
        warm_start(agent, parent)
        run.log_params({LR_USED: float(agent.lr_schedule(1.0))})  # the run says what it trained with
        on_guard, where = guard_windows(parent, data.windows, data.df.index)
        family = Family(mix, where, timer.score(on_guard))  # before any update the child is its parent
    if start is not None:  # the very state the run was in (exact), or its network and optimizer
        sha = str(start.saved.state_sha256)
        history.points[:0] = load_state(agent, start.folder.state_file(sha), sha, start.exact)
    first = int(agent.num_timesteps)
    ckpt = Checkpointer(agent, budget.lengths, job.checkpoint.every, timer.score, job.gates.select_metric,
                        (folder, run.run_id) if folder else None, history.points)  # fmt: skip
    if start is not None:
        ckpt.resume(start.saved, start.folder)
    t_learn = time.perf_counter()
    progress = progress_callback(job, env, run, budget.total)
    steps = budget.more if budget.more is not None else budget.total - first
    agent.learn(steps, [progress, RolloutHook(ckpt)], reset_num_timesteps=first == 0)
    learn_s = time.perf_counter() - t_learn
    run.log_metric_series([(K.curve(k), v, step) for k, v, step in history.points])
    choice = None
    if budget.lengths:
        choice = select_length([c.point for c in ckpt.candidates], job.gates.checkpoint_tolerance,
                               job.gates.select_metric)  # fmt: skip
        restore_policy(agent, ckpt.weights_of(choice.selected.timesteps))
        _log_curve(run, ckpt)
    if family is not None:
        family.child = timer.score(on_guard)
    return Learned(agent, learn_s, timer.seconds, choice, first, family)


def progress_callback(job: TrainJob, env: TrainingEnv, run: RunLog, total: int) -> ProgressCallback:
    """The training progress (of `total` steps) to the env's reward curriculum, the run's heartbeat
    (the reaper tells a live job from a dead one by it) and the optional progress bar."""
    beat = run.heartbeat()

    def on_progress(progress: float) -> None:
        env.set_progress(progress)
        beat()

    return ProgressCallback(total, job.progress_bar, job.run_name, on_progress)


def _agent_spec(job: TrainJob, parent: Parent | None) -> AgentSpec:
    """The agent as configured, its learning rate scaled for a continued model and scheduled."""
    if parent is None and job.lr_schedule == "constant":
        return job.agent
    continued = job.kind.continued
    multiplier = continued.lr_multiplier if parent is not None and continued else 1.0
    lr = learning_rate(job.agent, multiplier, job.lr_schedule)
    return AgentSpec(job.agent.target, {**job.agent.kwargs, "learning_rate": lr})


class _Timer:
    """Scores the current policy on the validation slices and adds up the seconds it takes."""

    def __init__(self, agent: BaseAlgorithm, data: Prepared, job: TrainJob) -> None:
        self.agent, self.data, self.job = agent, data, job
        self.seconds = 0.0

    def score(self, windows: Sequence[Window] | None = None) -> dict[str, float]:
        """Validation aggregates on `windows` (default: the job's validation slices)."""
        t0 = time.perf_counter()
        d = self.data
        policy = deterministic_policy(self.agent)  # with the weights it has trained so far
        metrics = validate(d.market, self.job.env, d.windows if windows is None else windows, policy,
                           self.job.seed)  # fmt: skip
        self.seconds += time.perf_counter() - t0
        return metrics


def _log_curve(run: RunLog, ckpt: Checkpointer) -> None:
    """`curve/validation/<aggregate>` stepped by each checkpoint's length."""
    run.log_metric_series(
        [
            (f"{K.CHECKPOINT_CURVE}{k}", float(v), c.point.timesteps)
            for c in ckpt.candidates
            for k, v in c.metrics.items()
        ]
    )
