"""`python -m rlpipe.routine`: Hydra composes conf/routine.yaml here; each step's sweep is a
`python -m rlpipe.train -m` of its own (through whatever launcher its overrides name)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rlpipe.cli.compose import routine_job
from rlpipe.cli.failures import end_command, run_main
from rlpipe.cli.schemas import register_configs
from rlpipe.errors import ConfigError, run_id_of
from rlpipe.jobs.checks import check_tracking
from rlpipe.jobs.naming import sweep_id_for
from rlpipe.jobs.routine_config import RoutineJob
from rlpipe.project import project_root

if TYPE_CHECKING:
    import pandas as pd

    from rlpipe.jobs.routine_job import SweepRunner

CONF = Path(__file__).resolve().parents[2] / "conf"
FORWARDED = ("data", "tracking")
"""The routine's own overrides of these groups are handed to every step's sweep."""
log = logging.getLogger("rlpipe.routine")


def sweep_runner(job: RoutineJob, forwarded: list[str]) -> SweepRunner:
    """Step k's sweep: `python -m rlpipe.train -m <routine.sweep> <data/tracking overrides>
    data.end=t_k slices=walk_forward hydra.sweep.dir=<folder>` (resume=true when resuming); returns
    the sweep's id."""

    def run(step: int, asof: pd.Timestamp, folder: Path) -> str:
        argv = [sys.executable, "-m", "rlpipe.train", "-m", *job.routine.sweep, *forwarded,
                f"data.end='{asof.isoformat()}'", "slices=walk_forward", f"hydra.sweep.dir={folder}",
                *(["resume=true"] if job.resume else [])]  # fmt: skip
        log.info("routine step %d, as of %s: %s", step, asof, " ".join(argv[2:]))
        code = subprocess.run(argv, cwd=project_root(), check=False).returncode
        if code == 2 and not any(folder.glob("*/failure.json")):
            raise ConfigError(
                f"routine step {step}: the sweep refused its config (exit 2, above): fix routine.sweep"
            )
        if code not in (0, 1, 2):
            raise RuntimeError(f"routine step {step}: the sweep ended with status {code}")
        return sweep_id_for(str(folder))

    return run


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="routine")
def _routine(cfg: DictConfig) -> None:
    try:
        job = routine_job(cfg)
        job.routine.dates()  # routine.first, every, steps: refused before anything heavy is imported
        check_tracking(job.tracking)
        task = HydraConfig.get().overrides.task
        forwarded = [o for o in task if o.split("=")[0].split(".")[0].split("/")[0] in FORWARDED]
    except Exception as exc:
        end_command(exc)
    from rlpipe.jobs.routine_job import run_routine  # pandas, MLflow: the config is accepted

    try:
        weeks = run_routine(job, sweep_runner(job, forwarded))
    except Exception as exc:
        end_command(exc, run_id_of(exc))
    log.info("routine: %d weeks, %d with a champion", len(weeks), sum(w.champion is not None for w in weeks))


def main() -> None:
    """Compose and replay; a user error exits with status 2 and one line, no traceback."""
    register_configs()
    run_main(_routine)
