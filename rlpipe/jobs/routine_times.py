"""Where a routine step's wall time went: training, scoring, paper trading, the registry, the rest.

Training and scoring happen inside the step's sweep, in its job runs, which record them
(`time/learn_s`, `time/checkpoint_s`, `time/overhead_s`; read back by `queries.sweep_times`):
training is learning without the checkpoints scored on validation; scoring is those checkpoints,
the data, the test backtests, the gates, the report and the registration of the policy. Jobs that
ran side by side (a parallel launcher) record more job-seconds than the wall clock saw, so both
are divided by the number of job runs open at once on average (their summed durations over the
wall time during which any was open): a sequential sweep's figures are its job-seconds. Paper
trading (the champion's week and its parent's) and the registry (the sweep step, which moves the
registry, and the routine's registry reads) are timed where they happen; `other` is the rest of
the step's wall time: process start, imports, Hydra, the launcher, buy-and-hold, the ledger.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rlpipe.tracking.queries import SweepTimes

NO_JOBS = SweepTimes(training=0.0, scoring=0.0, open=0.0, busy=0.0, step=0.0)


@dataclass
class Clock:
    """Seconds a step spent in paper sessions and in the routine's own registry reads."""

    paper: float = 0.0
    registry: float = 0.0

    @contextmanager
    def timing(self, part: str) -> Iterator[None]:
        """Add the time spent in the `with` block to `part` (paper or registry)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, part, getattr(self, part) + time.perf_counter() - t0)


def split(wall: float, sweep: SweepTimes, clock: Clock) -> dict[str, float]:
    """The step's wall time by part (`routine_report.PARTS`, adding up to `wall`), with the raw job-seconds
    (`job_training`, `job_scoring`) and `jobs_at_once` they were divided by."""
    at_once = max(sweep.open / sweep.busy, 1.0) if sweep.busy > 0 else 1.0
    parts = {
        "training": sweep.training / at_once,
        "scoring": sweep.scoring / at_once,
        "paper": clock.paper,
        "registry": sweep.step + clock.registry,
    }
    parts["other"] = wall - sum(parts.values())
    return {"wall": wall, **parts, "job_training": sweep.training, "job_scoring": sweep.scoring,
            "jobs_at_once": at_once}  # fmt: skip
