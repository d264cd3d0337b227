"""The project as a user runs it: its root and config folder, a command in a subprocess, a finished
CLI sweep, waiting on what a process does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def cli(module: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the project root, as a user runs it."""
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def drawn_plots(uri: str, run_id: str, timeout: float = 180.0) -> list[str]:
    """The run's `plots/` once the process a job started has drawn them (`rlpipe.jobs.tear_sheet_job`)."""
    from mlflow.tracking import MlflowClient

    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while str(state := client.get_run(run_id).data.tags.get("rlpipe.tear_sheets")).startswith("pending"):
        assert time.monotonic() < deadline, f"run {run_id}: tear sheets still pending after {timeout} s"
        time.sleep(0.5)
    assert state is not None and state.startswith("drawn: "), state
    return sorted(f.path for f in client.list_artifacts(run_id, "plots"))


def drawn_sweep_plot(uri: str, parent_run_id: str, timeout: float = 180.0) -> list[str]:
    """The sweep's `sweep/` artifacts once the process its sweep step started has drawn the comparison."""
    from mlflow.tracking import MlflowClient

    client, deadline = MlflowClient(uri), time.monotonic() + timeout
    while (state := client.get_run(parent_run_id).data.tags.get("rlpipe.sweep_plot")) == "pending":
        assert time.monotonic() < deadline, f"sweep run {parent_run_id}: plot still pending after {timeout} s"
        time.sleep(0.5)
    assert state == "drawn", state
    return sorted(f.path for f in client.list_artifacts(parent_run_id, "sweep"))


@dataclass(frozen=True)
class Sweep:
    """A finished smoke sweep run through the CLI: its process, store and folder."""

    proc: subprocess.CompletedProcess
    uri: str
    folder: Path


def wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
