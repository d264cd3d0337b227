"""What every job records about itself: its config as plain values, and the hash that groups seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlpipe.types import JsonDict

UNHASHED = (
    "seed", "tracking", "registry", "progress_bar", "plots", "threads", "checkpoint", "resume", "force",
    "weekly",
)  # fmt: skip
"""Config keys that do not make a different configuration: the seed, where it is recorded and what
the registry may do with it, display (progress bar, tear sheets), how many threads compute it,
where its resumable state is saved, whether it continues one, whether an earlier run is reused,
and the weekly plan (what a member trains is in the rest: seed, steps, init_from, values).
Reusing a FINISHED run needs more than the hash: the seed, the code, the data's digest, the store
and experiment searched, and where its version is and may go (`tracking.registered_model`,
`registry.promote`) must match too (`rlpipe.tracking.queries.finished_job`)."""
HASHED_AS = {"lengths": "checkpoints"}
"""Keys hashed under their former name (`lengths` was `checkpoints`), so that a configuration keeps its
hash across the rename: its resumable state's folder, its seeds' grouping with earlier runs."""


@dataclass(frozen=True)
class RunContext:
    """Where a job runs: its sweep, the overrides it was given, the project checkout (for the git sha)."""

    sweep_id: str | None = None
    overrides: tuple[str, ...] = ()
    root: Path = field(default_factory=Path.cwd)
    parallel_jobs: int = 1
    """Jobs the launcher runs at once on this machine (the basic launcher: 1)."""


def as_config(job: Any) -> JsonDict:
    """A job dataclass as the config it stands for: groups as {_target_: <class>, field: value, ...}.

    This is the record of the job (params, config.yaml, config hash); it is derived from the
    typed job, so what is recorded is what ran.
    """
    out: JsonDict = {}
    for f in dataclasses.fields(job):
        kept, value = f.metadata.get("config", True), getattr(job, f.name)
        if kept == "inline":  # its own keys are the job's (`TrainJob.kind`: init_from, pbt, weekly, ...)
            out.update({k: _node(v) for k, v in value.config().items()})
        elif kept:
            out[f.name] = _node(value)
    return out


def _node(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "as_config"):
        return value.as_config()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **dataclasses.asdict(value)}
    return value


def config_hash(config: JsonDict) -> str:
    """Hash of the config minus the seed and where it is recorded: equal for all seeds of a config."""
    kept = {HASHED_AS.get(k, k): v for k, v in config.items() if k not in UNHASHED}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]
