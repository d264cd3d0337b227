"""Population-based training: the population's plan, the exploit/explore step, and its ledger.

A population of `population` members trains in `rounds` of `interval` steps. After each round
every member is scored on the validation slices (the test slices stay untouched until the last
round, which assesses, gates and registers each member like any job). Then the bottom `fraction`
of the members (at least one) take a copy of a top member's training state (weights, optimizer
state, step counter) and that member's hyperparameters, each of `mutate` multiplied by 1 +/-
`perturb` (drawn from a generator seeded by `seed` and the round, so a rerun mutates alike).

Each member's state lives in its own state folder (`member-<i>/`, a `rlpipe.jobs.state_folder.
StateFolder` like a job's: `state-<sha256>.pt` + `checkpoint.json` with its sha256, its MLflow run, the last
round it finished and its score); `pbt.json` (the ledger) holds every
member's hyperparameters and every copy made, written after each round. A sweep killed mid-round
resumes from the ledger: rounds already done are not redone, members that finished the current
round are not retrained.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.files import copy_atomic, write_atomic
from rlpipe.jobs.state_folder import StateFolder

LEDGER = "pbt.json"


@dataclass
class PBTSpec:
    """Population-based training (config key `pbt`, set by `experiment=pbt`)."""

    population: int = 4
    rounds: int = 4
    interval: int = 500_000
    """Training steps per member per round."""
    fraction: float = 0.2
    """The share of members replaced after each round (bottom) by copies of the top (at least one)."""
    perturb: float = 0.2
    """A copied member's hyperparameters in `mutate` are multiplied by 1 + or - this."""
    mutate: list[str] = field(default_factory=lambda: ["agent.learning_rate", "agent.ent_coef"])
    seed: int = 0
    """Seeds the mutations; member i trains with the job's seed + i."""
    member: int = 0
    """This sweep job's member (set by the sweeper)."""
    round: int = 0
    """This sweep job's round, from 0 (set by the sweeper)."""
    dir: str = ""
    """The population's folder (set by the sweeper: <sweep dir>/pbt)."""

    def check(self) -> None:
        if self.population < 2 or self.rounds < 1 or self.interval < 1:
            raise ConfigError(
                f"pbt: population >= 2, rounds >= 1, interval >= 1 (got {self.population}, {self.rounds}, "
                f"{self.interval})"
            )
        if not 0 < self.fraction <= 0.5 or not 0 <= self.perturb < 1:
            raise ConfigError(
                f"pbt.fraction={self.fraction} in (0, 0.5], pbt.perturb={self.perturb} in [0, 1)"
            )

    @property
    def replaced(self) -> int:
        return max(1, math.floor(self.fraction * self.population))

    @property
    def final(self) -> bool:
        return self.round == self.rounds - 1


@dataclass(frozen=True)
class Copy:
    """One exploit/explore move after a round."""

    round: int
    member: int
    source: int
    scores: tuple[float, float]
    """(member's, source's) validation score that decided it."""
    hyper: dict[str, float]
    """The member's hyperparameters from the next round on (the source's, mutated)."""

    def text(self, metric: str) -> str:
        values = ", ".join(f"{k}={v:.6g}" for k, v in self.hyper.items())
        mine, theirs = self.scores
        copied = f"copied member {self.source} ({metric} {theirs:.3f} vs {mine:.3f})"
        return f"after round {self.round}: {copied} with {values}"


def exploit_explore(
    spec: PBTSpec, round_: int, scores: list[float], hyper: list[dict[str, float]]
) -> list[Copy]:
    """The bottom members (a NaN score is the worst) copy the top ones, hyperparameters mutated."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i] if math.isfinite(scores[i]) else math.inf)
    k = spec.replaced
    rng = np.random.default_rng([spec.seed, round_])
    copies = []
    for bottom, top in zip(order[::-1][:k], order[:k], strict=True):  # the worst copies the best
        sign = rng.choice([-1.0, 1.0], size=len(hyper[top]))
        mutated = {
            key: scaled(v, 1 + spec.perturb * float(d))
            for (key, v), d in zip(hyper[top].items(), sign, strict=True)
        }
        copies.append(Copy(round_, bottom, top, (scores[bottom], scores[top]), mutated))
    return copies


def scaled(value: float, factor: float) -> float:
    """`value` x `factor`, an integer hyperparameter (n_epochs) staying a positive integer."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(1, round(value * factor))
    return float(value * factor)


@dataclass
class Ledger:
    """The population's record: rounds done, every member's hyperparameters, every copy."""

    rounds_done: int
    hyper: list[dict[str, float]]
    copies: list[dict[str, Any]] = field(default_factory=list)
    scores: list[list[float]] = field(default_factory=list)
    """Per round, every member's validation score."""
    between_s: list[float] = field(default_factory=list)
    """Per round but the last, the sweeper's seconds between rounds (ranking, copies, records)."""

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / LEDGER, lambda f: f.write(json.dumps(asdict(self), indent=1).encode()))

    @classmethod
    def read(cls, folder: Path) -> Ledger | None:
        path = folder / LEDGER
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            return cls(int(raw["rounds_done"]), [dict(h) for h in raw["hyper"]], list(raw["copies"]),
                       [list(s) for s in raw["scores"]], list(raw.get("between_s", [])))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"PBT ledger {path} is unreadable ({exc}); delete {folder} to start over"
            ) from exc


def member_folder(root: Path, member: int) -> StateFolder:
    """The state folder of `member` of the population in `root`."""
    return StateFolder(root / f"member-{member}", f"delete {root} to start the population over")


def copy_state(root: Path, source: int, member: int) -> None:
    """Give `member` the training state of `source` (weights, optimizer, steps); it keeps its run,
    its round and its score."""
    src, dst = member_folder(root, source), member_folder(root, member)
    theirs, mine = src.read(), dst.read()
    if theirs is None or mine is None:
        raise CheckpointError(f"PBT: member {source} or {member} has no saved state in {root}")
    assert theirs.state_sha256 is not None, "a member's manifest names its state"
    copy_atomic(src.state_file(theirs.state_sha256), dst.named(theirs.state_sha256))
    dst.record(replace(mine, num_timesteps=theirs.num_timesteps, state_sha256=theirs.state_sha256))
