"""The replayed routine's job and config group (`routine`; `rlpipe.jobs.routine_job.run_routine` runs it).

Importing it imports no pandas: `RoutineSpec.dates` does when it is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rlpipe.data.data_config import DataSpec
from rlpipe.errors import ConfigError
from rlpipe.gates.health import HealthConfig
from rlpipe.tracking.config import RegistryConfig, TrackingConfig

if TYPE_CHECKING:
    import pandas as pd


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
class RoutineJob:
    """The weekly routine replayed over history (`rlpipe.jobs.routine_job.run_routine`)."""

    routine: RoutineSpec
    data: DataSpec
    tracking: TrackingConfig
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    health: HealthConfig = field(default_factory=HealthConfig)
    resume: bool = False
    root: Path = field(default_factory=Path.cwd)
