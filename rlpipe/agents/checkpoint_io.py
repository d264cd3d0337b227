"""A training state on disk: written atomically with its checksum, read back without unpickling code.

`save_state` writes the policy's weights, its optimizer state and everything else the next update
depends on (`rlpipe.agents.training_state`: random generators, the env's state, SB3's rollout
position, a replay buffer), with the learning curves so far, with `torch.save` through `write`
(`rlpipe.jobs.state_folder.StateFolder.write_state`: a temporary file, fsynced, renamed to a name
of its own; a reader never sees half of one) and returns its sha256. `load_state` refuses a file
whose sha256 differs from the recorded one and reads it with `torch.load(weights_only=True)`,
which accepts tensors and plain containers only, never code.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents import training_state
from rlpipe.errors import CheckpointError
from rlpipe.files import sha256_of


def policy_state(agent: BaseAlgorithm) -> dict[str, torch.Tensor]:
    """A copy of the policy's weights on the CPU (a snapshot that later training does not change)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in agent.policy.state_dict().items()}


def restore_policy(agent: BaseAlgorithm, state: dict[str, torch.Tensor]) -> None:
    agent.policy.load_state_dict(state)


Curve = tuple[str, float, int]
"""A learning-curve point: (metric key, value, step)."""


Writer = Callable[[Callable[[BinaryIO], None]], str]
"""Writes a file atomically by calling its argument on it; returns the file's sha256."""


def save_state(agent: BaseAlgorithm, write: Writer, curves: list[Curve] | None = None) -> str:
    """Write the agent's resumable training state (and the learning curves logged so far) through
    `write` (which writes a file atomically and returns its sha256); returns its sha256."""
    state = {
        "policy": policy_state(agent),
        "optimizer": copy.deepcopy(agent.policy.optimizer.state_dict()),
        "num_timesteps": int(agent.num_timesteps),
        "training": training_state.capture(agent),
        "curves": [(str(k), float(v), int(n)) for k, v, n in curves or ()],
    }
    return write(lambda f: torch.save(state, f))


def read_state(path: Path, sha256: str) -> dict[str, Any]:
    """The state saved at `path`, after checking it against its recorded sha256."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is missing; run with resume=false to start over")
    actual = sha256_of(path)
    if actual != sha256:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: sha256 {actual[:12]}… differs from the recorded "
            f"{sha256[:12]}…; delete {path.parent} or run with resume=false to start over"
        )
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an unreadable file or one holding more than tensors and containers
        raise CheckpointError(f"checkpoint {path} cannot be read safely ({exc}); delete it") from exc
    return state


def load_state(agent: BaseAlgorithm, path: Path, sha256: str, exact: bool = True) -> list[Curve]:
    """Restore the state saved at `path` into `agent` (built with the same spec, on the same env);
    returns the learning curves logged before it was saved.

    `exact=False` restores the network, optimizer, step counters and torch's generator only: the
    agent goes on with a fresh env (a PBT round, which trains each round on new episodes).
    """
    state = read_state(path, sha256)
    try:
        agent.policy.load_state_dict(state["policy"])
        agent.policy.optimizer.load_state_dict(state["optimizer"])
        if exact:
            training_state.restore(agent, state["training"])
        else:
            agent.num_timesteps = int(state["num_timesteps"])
            agent._n_updates = int(state["training"]["counters"].get("_n_updates", 0))
            torch.set_rng_state(state["training"]["rng"]["torch"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} does not fit this job ({type(exc).__name__}: {exc}); it was written by "
            "another configuration or version of rlpipe: delete it or run with resume=false"
        ) from exc
    return [(str(k), float(v), int(n)) for k, v, n in state["curves"]]
