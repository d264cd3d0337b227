"""Checkpoints along one training run: candidate lengths scored on validation, and resumable states.

`Checkpointer` is called at every rollout start and at the end of training (`RolloutHook`):
- at each length of `checkpoints=[...]` (and at the job's `timesteps`) it snapshots the policy and
  scores it on the validation slices (`LengthPoint`); after training `select_length` keeps one;
- every `checkpoint.every` steps, and at each length, it writes the resumable training state to
  the job's folder (`JobFolder`, a `rlpipe.jobs.state_folder.StateFolder`): policy, optimizer, step
  counter, every generator (`save_agent`), each file written atomically with its sha256 in
  `checkpoint.json`, which names the MLflow run to continue.

A resumed job (`resume=true`) reads the folder back, refuses a file whose checksum differs, and
continues the same MLflow run from the saved state, taking exactly the steps the uninterrupted run
takes (`rlpipe.agents.training_state`). The folder is deleted when the job finishes; while the job
runs it is locked by its process (`rlpipe.jobs.job_owner`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents.checkpoint_io import Curve, policy_state, read_state, save_state
from rlpipe.files import sha256_of, write_atomic
from rlpipe.gates.selection import LengthPoint
from rlpipe.jobs.job_owner import FolderLock, read_owner, write_owner
from rlpipe.jobs.state_folder import Saved, StateFolder
from rlpipe.types import JsonDict, Metrics

log = logging.getLogger(__name__)


@dataclass
class Candidate:
    """A checkpoint kept in memory: its point on the validation curve, its metrics and weights."""

    point: LengthPoint
    metrics: Metrics
    weights: dict[str, torch.Tensor]


class JobFolder(StateFolder):
    """The checkpoint folder of one job (configuration, seed and store), owned by one process at a
    time (`rlpipe.jobs.job_owner`): `claim` it before reading or clearing it."""

    def __init__(self, root: Path, config_hash: str, seed: int, store: str, job: str = "") -> None:
        tag = hashlib.sha1(store.encode()).hexdigest()[:6]
        path = root / f"{config_hash}-s{seed}-{tag}"
        super().__init__(path, f"delete {path} or run with resume=false to start over")
        self.lock = FolderLock(self.path, job or self.path.name)

    def claim(self) -> None:
        """Lock the folder for this process; a live owner is refused (`JobBusyError`)."""
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    def record_run(self, run_id: str) -> None:
        """Name this process and its run in the folder, before anything trains."""
        write_owner(self.path, run_id)

    def read(self) -> Saved | None:
        """The saved state; the run of a job that stopped before its first state (no state to load);
        or None when the folder holds neither. A corrupt manifest is refused."""
        saved = super().read()
        if saved is None:
            owner = read_owner(self.path)
            return Saved(str(owner["run_id"]), 0, None) if owner and owner.get("run_id") else None
        return saved

    def save(self, agent: BaseAlgorithm, run_id: str, points: list[JsonDict], curves: list[Curve]) -> None:
        """The agent's state and the manifest naming it, with the scored checkpoints (`save_agent`)."""
        save_agent(self, agent, Saved(run_id, 0, None, points), curves)

    def save_weights(self, name: str, weights: dict[str, torch.Tensor]) -> str:
        """Write a checkpoint's weights atomically; returns their sha256."""
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path / name, lambda f: torch.save(weights, f))
        return sha256_of(self.path / name)


def save_agent(
    folder: StateFolder, agent: BaseAlgorithm, saved: Saved, curves: list[Curve] | None = None
) -> None:
    """Write the agent's resumable state into `folder`, then the manifest naming it, each atomically:
    `saved`'s run and owner's fields, with the state's steps and sha256 (filled in here)."""
    folder.path.mkdir(parents=True, exist_ok=True)
    sha = save_state(agent, folder.write_state, curves)  # beside the state the manifest names now
    folder.record(replace(saved, num_timesteps=int(agent.num_timesteps), state_sha256=sha))


class Checkpointer:
    """The training hook: scores the policy at each candidate length, saves resumable states."""

    def __init__(
        self,
        agent: BaseAlgorithm,
        lengths: Sequence[int],
        every: int,
        score: Callable[[], Metrics],
        metric: str,
        folder: tuple[JobFolder, str] | None = None,
        curves: list[Curve] | None = None,
    ) -> None:
        self.agent, self.every, self.score, self.metric = agent, every, score, metric
        self.curves = curves if curves is not None else []
        """The learning curves so far (saved with the state, so a resumed run logs all of them)."""
        self.pending = sorted(set(lengths))
        self.folder = folder
        self.candidates: list[Candidate] = []
        self._sha256: dict[int, str] = {}
        """sha256 of each checkpoint's weights file, taken once when it is written or read back."""
        self._saved_at = 0

    def resume(self, saved: Saved, folder: StateFolder) -> None:
        """Take back the scored checkpoints of a saved run (their weights checked and read)."""
        for p in saved.points:
            weights = read_state(folder.path / p["file"], p["sha256"])
            point = LengthPoint(int(p["timesteps"]), int(p["trained_steps"]), float(p["score"]))
            self.candidates.append(Candidate(point, dict(p["metrics"]), weights))
            self._sha256[point.timesteps] = str(p["sha256"])
        done = {c.point.timesteps for c in self.candidates}
        self.pending = [n for n in self.pending if n not in done]
        self._saved_at = saved.num_timesteps

    def __call__(self, steps: int, final: bool) -> None:
        taken = False
        while self.pending and (steps >= self.pending[0] or final):
            self._take(self.pending.pop(0), steps)
            taken = True
        due = self.every > 0 and steps - self._saved_at >= self.every
        if self.folder is not None and not final and (taken or due):
            folder, run_id = self.folder
            folder.save(self.agent, run_id, self.manifest_points(), self.curves)
            self._saved_at = steps

    def _take(self, length: int, steps: int) -> None:
        metrics = self.score()
        point = LengthPoint(length, steps, float(metrics.get(self.metric, float("nan"))))
        self.candidates.append(Candidate(point, metrics, policy_state(self.agent)))
        log.info("checkpoint %d (%d steps): validation %s = %.4f", length, steps, self.metric, point.score)
        if self.folder is not None:
            weights = self.candidates[-1].weights
            self._sha256[length] = self.folder[0].save_weights(f"ckpt-{length}.pt", weights)

    def manifest_points(self) -> list[JsonDict]:
        assert self.folder is not None
        out = []
        for c in self.candidates:
            name = f"ckpt-{c.point.timesteps}.pt"
            out.append(
                {
                    "timesteps": c.point.timesteps,
                    "trained_steps": c.point.trained_steps,
                    "score": c.point.score,
                    "metrics": c.metrics,
                    "file": name,
                    "sha256": self._sha256[c.point.timesteps],
                }
            )
        return out

    def weights_of(self, length: int) -> dict[str, Any]:
        return next(c.weights for c in self.candidates if c.point.timesteps == length)
