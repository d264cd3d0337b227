"""`python -m rlpipe.runs reap [tracking=server] [tracking.uri=...]`: what a dead process left behind.

Runs left RUNNING by a process that died -> KILLED, and registry locks whose holder is gone ->
released (recorded on the registered model). The tracking overrides are composed with the
package's own conf/train.yaml (found beside the package, as `python -m rlpipe.train` finds it,
never in the working directory), so the command works from any folder and the store is the one a
job with the same overrides would record to. A local store that does not exist yet is not
created: there is nothing to reap.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from rlpipe.cli.compose import group
from rlpipe.cli.failures import end_command
from rlpipe.cli.schemas import register_configs
from rlpipe.errors import ConfigError
from rlpipe.jobs.checks import check_tracking
from rlpipe.jobs.sweep_job import reap_dead_runs, release_dead_locks
from rlpipe.tracking.config import TrackingConfig

USAGE = "usage: python -m rlpipe.runs reap [tracking=local|server] [tracking.uri=...] [tracking.experiment=]"
CONF = Path(__file__).resolve().parents[2] / "conf"
"""The config tree beside the package (`rlpipe/train.py` reads the same one as ../conf)."""


def tracking_of(overrides: list[str]) -> TrackingConfig:
    """The tracking group a job with these overrides would use."""
    bad = [o for o in overrides if not o.startswith("tracking")]
    if bad:
        raise ConfigError(f"only tracking overrides are accepted, not {bad}; {USAGE}")
    register_configs()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        tracking: TrackingConfig = group(compose("train", overrides=overrides).tracking)
    check_tracking(tracking)
    return tracking


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        if not args or args[0] != "reap":
            raise ConfigError(f"unknown or missing action {args[:1]}; {USAGE}")
        tracking = tracking_of(args[1:])
        db = Path(tracking.uri.removeprefix("sqlite:///"))
        if tracking.uri.startswith("sqlite:///") and not db.exists():
            sys.stdout.write(f"no store at {db}: nothing to reap (pass tracking.uri=... to name one)\n")
            return
        reaped = reap_dead_runs(tracking)
        released = release_dead_locks(tracking)
    except Exception as exc:
        end_command(exc)
    sys.stdout.write(f"{len(reaped)} run(s) left RUNNING by a dead process marked KILLED in {tracking.uri}\n")
    sys.stdout.writelines(f"  {run_id}\n" for run_id in reaped)
    sys.stdout.write(f"{len(released)} registry lock(s) whose holder is gone released\n")
    sys.stdout.writelines(f"  {name}\n" for name in released)
