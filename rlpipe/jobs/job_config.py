"""The typed jobs (`TrainJob`, `EvaluateJob`, `PaperJob`, `RoutineJob`) and the config groups only
jobs own (`checkpoint`, `continuation`, `paper`, `routine`): values and the checks that need nothing else.

A notebook builds these by hand; the CLI builds them from a composed config and checks them before it
imports anything heavy, so importing this module imports no torch, SB3, MLflow, numba or pandas
(`RoutineSpec.dates` imports pandas when it is called). What runs them is beside each:
`train_job.run_train`, `evaluate_job.run_evaluate`, `paper_job.run_paper`, `routine_job.run_routine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError
from rlpipe.gates.health import HealthConfig
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.naming import Varied, run_name
from rlpipe.jobs.pbt_population import PBTSpec
from rlpipe.jobs.weekly_plan import WeeklySpec
from rlpipe.tracking.config import RegistryConfig, TrackingConfig

if TYPE_CHECKING:
    import pandas as pd

CONTINUATION_DATA = ("mix", "latest", "all")
"""continuation.data: what a continued model trains on."""


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often a job saves its resumable training state (config node `checkpoint`)."""

    every: int = 100_000
    """Steps between saves of the resumable state (0: only at the lengths of `checkpoints`)."""
    dir: str = "checkpoints"
    """Folder of the saved states, one subfolder per job; relative paths are under the project root."""


@dataclass
class ContinuationSpec:
    """A continued model's training data (config group `continuation`; ignored without init_from)."""

    data: str = "mix"
    """mix: `recent_fraction` of the episodes from bars after the ancestors' training, the rest
    from older bars; latest: the newer bars only; all: every training bar alike."""
    recent_fraction: float = 0.7
    """mix: the share of episodes drawn from the bars after the ancestors' training."""

    def check(self) -> None:
        if self.data not in CONTINUATION_DATA:
            raise ConfigError(f"continuation.data={self.data!r}: expected one of {CONTINUATION_DATA}")
        if not 0.0 < self.recent_fraction <= 1.0:
            raise ConfigError(
                f"continuation.recent_fraction={self.recent_fraction}: expected a share in (0, 1]"
            )


@dataclass(frozen=True)
class PaperConfig:
    """How a paper session runs (config node `paper`)."""

    poll_s: float = 0.2
    """Seconds between looks at a followed file."""
    idle_stop_s: float = 0.0
    """Following: end the session when no bar arrived for this long (0: never; SIGTERM stops it)."""
    save_every: int = 500
    """Bars between logged points and saved state of a finished file (following: every bar)."""
    dir: str = "paper"
    """Folder of the sessions' states and decisions, one subfolder per model, file and store;
    relative paths are under the project root."""
    broker: str = ""
    """`package.module.Class` of a `rlpipe.forward.broker.Broker` (built with the policy's SimConfig,
    bar hours and feature count); empty: the simulated broker."""
    judge_every: int = 24
    """Following: bars between health verdicts of the record (a finished file: one, at its end)."""
    start: str | None = None
    """The first bar to trade (a timestamp): earlier bars of the file only warm the features up and
    may lie anywhere; None: trade from the first bar whose features are complete."""

    def __post_init__(self) -> None:
        if not (self.poll_s > 0 and self.save_every >= 1 and self.idle_stop_s >= 0):
            raise ConfigError(f"paper.poll_s={self.poll_s} must be > 0, paper.save_every={self.save_every} "
                              f">= 1 and paper.idle_stop_s={self.idle_stop_s} >= 0")  # fmt: skip


@dataclass(frozen=True)
class RoutineSpec:
    """The replayed routine (config node `routine`)."""

    first: str = "2022-06-30 23:00"
    """t_0, the as-of date of the first step (a bar timestamp, UTC unless it says otherwise)."""
    every: str = "7D"
    """The time between steps (a pandas offset: 7D, 1D...)."""
    steps: int = 8
    """How many steps; the data must reach t_{steps}."""
    sweep: list[str] = field(default_factory=lambda: ["experiment=seed_sweep", "seed=1,6"])
    """Each step's sweep: overrides of `python -m rlpipe.train -m` (with data.end and the slices set
    by the routine)."""
    dir: str = "routine"
    """Folder of the routine's ledger, sweeps and paper sessions (relative: under the project root)."""

    def dates(self) -> list[pd.Timestamp]:
        """t_0 .. t_steps."""
        import pandas as pd  # a second to import: when the dates are asked for, not with the config

        try:
            first, every = pd.Timestamp(self.first), pd.Timedelta(self.every)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"routine.first={self.first!r} / routine.every={self.every!r}: {exc}") from exc
        first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
        if self.steps < 1 or every <= pd.Timedelta(0):
            raise ConfigError(f"routine.steps={self.steps} must be >= 1 and routine.every={self.every} > 0")
        return [first + k * every for k in range(self.steps + 1)]


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
    checkpoints: tuple[int, ...] = ()
    """Training lengths to score on validation; the run keeps one (`rlpipe.gates.selection`).
    Empty: the policy after `timesteps` is kept."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Where and how often the resumable training state is saved."""
    resume: bool = False
    """Continue the job's checkpointed run (same MLflow run) instead of starting over."""
    force: bool = False
    """Train even when a FINISHED run of the same configuration, seed and code exists."""
    init_from: str | None = None
    """Continue this registered policy (`rlpipe.jobs.lineage`); None trains from scratch."""
    lr_multiplier: float = 0.5
    """A continued model's learning rate: the agent's x this (ignored without `init_from`)."""
    plots: bool = True
    """The per-slice tear sheets (plots/<role>_<slice>.png) and the training-length plot, drawn after the
    job by a process of their own (`jobs.tear_sheet_job`); false skips them (`python -m rlpipe.runs plots
    run_id=<id>` draws them later)."""
    lr_schedule: str = "constant"
    """constant, or linear (decays to 0 over the run; a checkpoint then differs from a shorter run)."""
    continuation: ContinuationSpec = field(default_factory=ContinuationSpec)
    """A continued model's training data (latest bars, a recent/older mix, or all)."""
    pbt: PBTSpec | None = None
    """A population-based-training round of one member (`rlpipe.jobs.pbt_job.run_round`)."""
    weekly: WeeklySpec | None = None
    """The weekly plan this job is a member of (recorded; what it trains is in the fields above)."""
    role: str = field(default="", metadata={"config": False})
    """A weekly member (explorer-0, refiner-2, champion-0; `rlpipe.jobs.weekly_plan`), else empty; a tag."""
    role_note: str = field(default="", metadata={"config": False})
    """What the member continues or explores, as its run's tag records it."""
    varied: Varied = field(default=(), metadata={"config": False})
    """What the job's sweep varies besides the seed, with this job's values (`rlpipe.jobs.naming`)."""

    @property
    def label(self) -> str:
        """The configuration's readable name, the same for every seed: agent-env-reward-t<timesteps>."""
        return "-".join([self._prefix, *self._parts.values()] if self._prefix else self._parts.values())

    @property
    def run_name(self) -> str:
        """s<seed>, then what the sweep varies, then the rest of the label (`rlpipe.jobs.naming`)."""
        return run_name(self.seed, self._prefix, self._parts, self.varied)

    @property
    def _prefix(self) -> str:
        return self.role or (f"pbt-{self.pbt.member}" if self.pbt else "")

    @property
    def _parts(self) -> dict[str, str]:
        steps = self.pbt.interval * self.pbt.rounds if self.pbt else self.timesteps
        return {
            "agent": self.agent.name,
            "env": self.env.kind,
            "reward": self.reward.kind,
            "timesteps": f"t{steps}",
        }


@dataclass(frozen=True)
class EvaluateJob:
    """A policy to evaluate (models:/name@alias, models:/name/N or runs:/<id>/policy) and where."""

    data: DataSpec
    slices: SliceSpec
    gates: GatesConfig
    tracking: TrackingConfig
    model: str
    seed: int
    """Seeds the random baseline."""


@dataclass(frozen=True)
class PaperJob:
    """A policy to paper trade (models:/name@alias, models:/name/N or runs:/<id>/policy) on `data`."""

    model: str
    data: DataSpec
    tracking: TrackingConfig
    follow: bool = False
    """Keep reading the file as another process appends bars to it, until stopped (SIGTERM)."""
    resume: bool = False
    """Continue the session this model and file left (its run and its last saved bar)."""
    paper: PaperConfig = field(default_factory=PaperConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    """`on_degraded`: what a degraded verdict of the @champion's record does (flag or rollback)."""
    health: HealthConfig = field(default_factory=HealthConfig)
    root: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class RoutineJob:
    """The weekly routine replayed over history (`rlpipe.jobs.routine_job.run_routine`)."""

    routine: RoutineSpec
    data: DataSpec
    tracking: TrackingConfig
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    resume: bool = False
    root: Path = field(default_factory=Path.cwd)
