"""A resumable training state on disk: one folder holding a state file and the manifest that names it.

The manifest (`checkpoint.json`) records the MLflow run the state belongs to, its step count, the
state's sha256, and what its owner adds: a job's scored checkpoints (`rlpipe.jobs.checkpoints.
JobFolder`, a job's folder), a PBT member's last finished round and its score (`rlpipe.jobs.
pbt_population.member_folder`). `rlpipe.jobs.checkpoints.save_agent` writes both, each atomically
(`rlpipe.files`), the state first, under a name of its own (`state-<sha256>.pt`) beside the state the
manifest names, then the manifest, then removes the older state: a process killed at any moment
leaves a manifest naming a whole state with the checksum recorded for it. A manifest that
cannot be read is refused here, naming it; the state is checked against its sha256 when it is
loaded (`rlpipe.agents.checkpoint_io`). No torch here: the PBT sweeper reads and copies member
states in the launching process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rlpipe.errors import CheckpointError
from rlpipe.files import sha256_of, write_atomic
from rlpipe.types import JsonDict

MANIFEST = "checkpoint.json"
LEGACY_STATE = "state.pt"
"""The one state file of a folder written before states were named by their checksum."""


@dataclass
class Saved:
    """What a state folder's manifest says: the run to continue, its last state and what its owner adds."""

    run_id: str
    num_timesteps: int
    state_sha256: str | None
    """None: the job stopped before its first saved state (its run is reopened, training restarts)."""
    points: list[JsonDict] = field(default_factory=list)
    """A job's scored checkpoints so far (`rlpipe.jobs.checkpoints.Checkpointer`)."""
    round: int = -1
    """A PBT member's last finished round (-1: not a PBT member)."""
    score: float = math.nan
    """A PBT member's validation score in that round."""


class StateFolder:
    """One folder's training state and manifest; `fix` tells the user what to do with a corrupt one."""

    def __init__(self, path: Path, fix: str) -> None:
        self.path, self.fix = path, fix

    def named(self, sha256: str) -> Path:
        """Where the state whose checksum is `sha256` is written."""
        return self.path / f"state-{sha256[:16]}.pt"

    def state_file(self, sha256: str) -> Path:
        """The state file to read whose checksum is `sha256` (in a folder of an older rlpipe, `state.pt`)."""
        named, legacy = self.named(sha256), self.path / LEGACY_STATE
        return legacy if legacy.is_file() and not named.is_file() else named

    def write_state(self, write: Callable[[BinaryIO], None]) -> str:
        """Write a new state beside the one the manifest names (`write(file)`), under a name taken from
        its sha256; returns the sha256. `record` then names it and removes the older state."""
        self.path.mkdir(parents=True, exist_ok=True)
        new = self.path / f".state.new-{os.getpid()}"
        write_atomic(new, write)
        sha = sha256_of(new)
        os.replace(new, self.named(sha))
        return sha

    def read(self) -> Saved | None:
        """The manifest, or None when there is none; an unreadable one is refused (`CheckpointError`)."""
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            return None
        try:
            raw = json.loads(manifest.read_text())
            steps, sha, points = int(raw["num_timesteps"]), str(raw["sha256"]), list(raw["points"])
            member = int(raw.get("round", -1)), float(raw.get("score", math.nan))
            return Saved(str(raw["run_id"]), steps, sha, points, *member)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint manifest {manifest} is unreadable ({exc}); {self.fix}"
            ) from exc

    def record(self, saved: Saved) -> None:
        """Write the manifest naming the state file already written (atomically)."""
        assert saved.state_sha256 is not None, "a manifest names a written state"
        manifest: JsonDict = {"run_id": saved.run_id, "num_timesteps": saved.num_timesteps,
                              "sha256": saved.state_sha256, "points": saved.points}  # fmt: skip
        if saved.round >= 0:
            manifest |= {"round": saved.round, "score": saved.score}
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path / MANIFEST, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
        kept = self.state_file(saved.state_sha256)
        for stale in [*self.path.glob("state*.pt"), *self.path.glob(".*state.new-*")]:
            if stale != kept:  # states no manifest names now, and those of a process killed mid-write
                stale.unlink(missing_ok=True)

    def clear(self) -> None:
        """Delete the folder and all it holds (a job folder's lock file lies beside it, with its holder)."""
        shutil.rmtree(self.path, ignore_errors=True)
