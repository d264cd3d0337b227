"""`python -m rlpipe.runs reap [tracking=server] [tracking.uri=...]`: runs whose process died -> KILLED.

The tracking overrides are composed with conf/train.yaml, as for a training job, so the store is
the one a job with the same overrides would record to.
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir

from rlpipe.cli.compose import group
from rlpipe.cli.failures import end_command
from rlpipe.cli.schemas import register_configs
from rlpipe.errors import ConfigError
from rlpipe.jobs.checks import check_tracking
from rlpipe.jobs.sweep_job import reap_dead_runs
from rlpipe.project import project_root

USAGE = "usage: python -m rlpipe.runs reap [tracking=local|server] [tracking.uri=...] [tracking.experiment=]"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        if not args or args[0] != "reap":
            raise ConfigError(f"unknown or missing action {args[:1]}; {USAGE}")
        overrides = args[1:]
        bad = [o for o in overrides if not o.startswith("tracking")]
        if bad:
            raise ConfigError(f"only tracking overrides are accepted, not {bad}; {USAGE}")
        register_configs()
        with initialize_config_dir(f"{project_root()}/conf", version_base="1.3"):
            tracking = group(compose("train", overrides=overrides).tracking)
        check_tracking(tracking)
        reaped = reap_dead_runs(tracking)
    except Exception as exc:
        end_command(exc)
    sys.stdout.write(f"{len(reaped)} run(s) left RUNNING by a dead process marked KILLED in {tracking.uri}\n")
    sys.stdout.writelines(f"  {run_id}\n" for run_id in reaped)
