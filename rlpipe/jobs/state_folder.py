"""A resumable training state on disk: one folder holding `state.pt` and the manifest that names it.

The manifest (`checkpoint.json`) records the MLflow run the state belongs to, its step count, the
state's sha256, and what its owner adds: a job's scored checkpoints (`rlpipe.jobs.checkpoints.
JobFolder`, a job's folder), a PBT member's last finished round and its score (`rlpipe.jobs.
pbt_population.member_folder`). `rlpipe.jobs.checkpoints.save_agent` writes both, each atomically
(`rlpipe.files`), the state first: the manifest names only a state that is whole. A manifest that
cannot be read is refused here, naming it; the state is checked against its sha256 when it is
loaded (`rlpipe.agents.checkpoint_io`). No torch here: the PBT sweeper reads and copies member
states in the launching process.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rlpipe.errors import CheckpointError
from rlpipe.files import write_atomic
from rlpipe.types import JsonDict

MANIFEST = "checkpoint.json"
STATE = "state.pt"


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

    def state_file(self) -> Path:
        return self.path / STATE

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

    def clear(self) -> None:
        """Delete the folder and all it holds (a job folder's lock file lies beside it, with its holder)."""
        shutil.rmtree(self.path, ignore_errors=True)
