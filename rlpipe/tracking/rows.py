"""The row types of a recorded job run, shared by the read side, the reports and the CLI table.

Pure: no mlflow import, so reports can take rows without depending on the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

AXES = ("timesteps", "reward", "agent", "env")
"""The `JobRow` fields a sweep typically varies besides the seed (columns of the notebook's runs frame)."""


@dataclass(frozen=True)
class JobRow:
    """One job run of a sweep, as recorded: identity, verdicts and test aggregates."""

    run_id: str
    run_name: str
    status: str
    seed: int | None
    config_hash: str
    label: str
    """The configuration's readable name (agent-env-reward-timesteps)."""
    timesteps: int | None
    agent: str
    env: str
    reward: str
    verdict: str
    """Run verdict (pass, retest, reject), 'failed' for a crashed run, '-' before it was judged."""
    sweep_verdict: str
    classification: str
    deployment: str
    regimes_missing: tuple[str, ...]
    """Regimes the data offers that the run's test slices miss."""
    model_version: str
    """The run's version in `registered_model` (the sweep step checks it against the registry)."""
    error: str
    promotable: bool = True
    """False when the job ran with registry.promote=false: judged, never staged or crowned."""
    test: dict[str, float] = field(default_factory=dict)
    """The `test/<aggregate>` metrics without the prefix (total, max_drawdown, consistency, ...)."""
    validation: dict[str, float] = field(default_factory=dict)
    """The `validation/<aggregate>` metrics without the prefix: what ranks the run."""
    sweep_id: str = ""
    """The sweep that ran it (a later sweep may count it too, see `queries.job_runs`)."""
    candidates: int = 1
    """Training lengths the run chose among on validation (`checkpoints`)."""
    timesteps_kept: int | None = None
    """The training length whose policy the run kept (None when not recorded)."""
    data_digest: str = ""
    """The digest of the data it trained and was tested on (a rerun on changed data is not a reuse)."""
    generation: int = 0
    """0 for a model trained from scratch, its parent's + 1 for a continued one."""
    parent_run: str = ""
    parent_version: str = ""
    role: str = ""
    """A weekly member's role (explorer-0, refiner-2, champion-0), else empty."""
    family_parent: float = math.nan
    """A continued model: its parent's validation score on the parent's validation slices."""
    family_child: float = math.nan
    """... and its own on the same slices (the forgetting guard's numbers)."""
    registered_model: str = ""
    """The registered model its policy was registered in (`tracking.registered_model`)."""
    params: dict[str, str] = field(default_factory=dict)
    """The run's params as recorded (the config it ran, flattened)."""
    artifact_uri: str = ""
    """Where the run's artifacts are (`queries.equity_curves` reads from there, no lookup of the run)."""

    @property
    def family_change(self) -> float:
        return self.family_child - self.family_parent

    @property
    def finished(self) -> bool:
        return self.status == "FINISHED"

    def test_metric(self, key: str) -> float:
        """A test aggregate, NaN when it was not recorded."""
        return self.test.get(key, math.nan)


@dataclass(frozen=True)
class GateRecord:
    """What a job run recorded of its run gates, read back for the notebook's gate table."""

    row: JobRow
    passed: dict[str, float]
    """Its `gate/<name>` metrics without the prefix (1.0 passed, 0.0 failed)."""
    reported: dict[str, dict[str, Any]]
    """The gates of its report/report.json (passed, value, threshold, rule); {} without one."""


@dataclass(frozen=True)
class SweepGates:
    """A sweep's gates as recorded: each job run's, and the configuration gates of its sweep report."""

    runs: list[GateRecord]
    report: dict[str, Any]
    """The parent run's sweep/report.json ({} before the sweep step has run)."""
