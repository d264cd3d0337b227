"""The typed jobs (`TrainJob`, `EvaluateJob`, `PaperJob`), the kinds of training job (`Fresh`,
`Continued`, `PBTRound`, `WeeklyMember`: `TrainJob.kind`) and the config groups only these jobs own
(`checkpoint`, `continuation`, `paper`): values and the checks that need nothing else (the routine's
job and group: `routine_config`).

A notebook builds these by hand; the CLI builds them from a composed config and checks them before it
imports anything heavy, so importing this module imports no torch, SB3, MLflow, numba or pandas. What
runs them is beside each: `train_job.run_train`, `evaluate_job.run_evaluate`, `paper_job.run_paper`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import RegistryConfig, TrackingConfig

CONTINUATION_DATA = ("mix", "latest", "all")
"""continuation.data: what a continued model trains on."""


@dataclass(frozen=True)
class CheckpointConfig:
    """Where and how often a job saves its resumable training state (config node `checkpoint`)."""

    every: int = 100_000
    """Steps between saves of the resumable state (0: only at the training `lengths`)."""
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


class _Kind:
    """What every kind of job answers as a job trained from scratch does; a kind overrides what differs."""

    @property
    def role(self) -> str:
        """What leads the label and the run name after the seed, and the run's role tag; empty: none."""
        return ""

    @property
    def continued(self) -> Continued | None:
        """The policy the job continues, and how; None: trained from scratch."""
        return None

    def steps(self, timesteps: int) -> int:
        """The training steps the label names."""
        return timesteps

    def continuing(self, init_from: str) -> JobKind:
        """This kind continuing `init_from` instead (the version an alias named when the job ran)."""
        raise AssertionError(f"{self} continues nothing")

    def tags(self) -> dict[str, str]:
        """The run's tags that say what kind of job it is."""
        return {T.ROLE: self.role} if self.role else {}

    def config(self) -> dict[str, Any]:
        """The kind as the top-level config keys the job records and hashes; a job that continues
        nothing records `Continued`'s defaults, as conf/train.yaml holds them."""
        c = self.continued
        kept = c or Continued("")
        return {
            "init_from": c.init_from if c else None,
            "lr_multiplier": kept.lr_multiplier,
            "continuation": kept.continuation,
            "pbt": None,
            "weekly": None,
        }


@dataclass(frozen=True)
class Fresh(_Kind):
    """Trained from scratch (`init_from=null`)."""


@dataclass(frozen=True)
class Continued(_Kind):
    """Continues a registered policy (`init_from`; `rlpipe.jobs.lineage`)."""

    init_from: str
    """models:/<name>@<alias>, models:/<name>/<version> or runs:/<id>/policy."""
    lr_multiplier: float = 0.5
    """The learning rate: the agent's x this."""
    continuation: ContinuationSpec = field(default_factory=ContinuationSpec)
    """The training data (latest bars, a recent/older mix, or all)."""

    @property
    def continued(self) -> Continued:
        return self

    def continuing(self, init_from: str) -> Continued:
        return replace(self, init_from=init_from)


@dataclass(frozen=True)
class PBTRound(_Kind):
    """One member's round of population-based training (`pbt`; `rlpipe.jobs.pbt_job.run_round`)."""

    pbt: PBTSpec

    @property
    def role(self) -> str:
        return f"pbt-{self.pbt.member}"

    def steps(self, timesteps: int) -> int:
        return self.pbt.interval * self.pbt.rounds

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pbt": self.pbt}


@dataclass(frozen=True)
class WeeklyMember(_Kind):
    """A member of the weekly plan (`weekly`; `rlpipe.jobs.weekly_plan`); what it trains is in the job."""

    weekly: WeeklySpec
    role: str = ""
    """explorer-0, refiner-2, champion-0; empty outside a weekly sweep job."""
    role_note: str = ""
    """What the member continues or explores, as its run's tag records it."""
    continued: Continued | None = None
    """The version a refiner or the champion slot continues; None: a new configuration."""

    def continuing(self, init_from: str) -> WeeklyMember:
        assert self.continued is not None, f"{self} continues nothing"
        return replace(self, continued=self.continued.continuing(init_from))

    def tags(self) -> dict[str, str]:
        return {T.ROLE: self.role, T.ROLE_NOTE: self.role_note} if self.role else {}

    def config(self) -> dict[str, Any]:
        return {**super().config(), "weekly": self.weekly}


JobKind = Fresh | Continued | PBTRound | WeeklyMember
"""What kind of training job a `TrainJob` is."""


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
    lengths: tuple[int, ...] = ()
    """Training lengths to score on validation; the run keeps one (`rlpipe.gates.selection`).
    Empty: the policy after `timesteps` is kept."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Where and how often the resumable training state is saved."""
    resume: bool = False
    """Continue the job's checkpointed run (same MLflow run) instead of starting over."""
    force: bool = False
    """Train even when a FINISHED run of the same configuration, seed and code exists."""
    kind: JobKind = field(default_factory=Fresh, metadata={"config": "inline"})
    """Trained from scratch, continuing a policy, a PBT round or a weekly member; its values are the
    top-level config keys init_from, lr_multiplier, continuation, pbt and weekly (`_Kind.config`)."""
    plots: bool = True
    """The per-slice tear sheets (plots/<role>_<slice>.png) and the training-length plot, drawn after the
    job by a process of their own (`jobs.tear_sheet_job`); false skips them (`python -m rlpipe.runs plots
    run_id=<id>` draws them later)."""
    lr_schedule: str = "constant"
    """constant, or linear (decays to 0 over the run; a checkpoint then differs from a shorter run)."""
    varied: Varied = field(default=(), metadata={"config": False})
    """What the job's sweep varies besides the seed, with this job's values (`rlpipe.jobs.naming`)."""

    @property
    def label(self) -> str:
        """The configuration's readable name, the same for every seed: [<role>-]agent-env-reward-t<steps>."""
        return "-".join([self.kind.role, *self._parts.values()] if self.kind.role else self._parts.values())

    @property
    def run_name(self) -> str:
        """s<seed>, then what the sweep varies, then the rest of the label (`rlpipe.jobs.naming`)."""
        return run_name(self.seed, self.kind.role, self._parts, self.varied)

    @property
    def _parts(self) -> dict[str, str]:
        return {
            "agent": self.agent.name,
            "env": self.env.kind,
            "reward": self.reward.kind,
            "timesteps": f"t{self.kind.steps(self.timesteps)}",
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
