"""The detached drawing process takes only the CPU the jobs leave: niced, and so is its session's
scheduling group (Linux autogroup), where a niced process alone in its session would still take a
full share from the jobs training."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlpipe.jobs.tear_sheet_job import NICE, draw_later
from rlpipe.tracking.config import TrackingConfig


def test_the_drawing_process_is_niced_in_its_own_session_and_so_is_its_scheduling_group(tmp_path):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="rlpipe")
    proc = draw_later(tracking, "no-such-run")  # refused once it runs: the process is all we look at
    try:
        assert os.getsid(proc.pid) == proc.pid != os.getsid(0)  # a Ctrl-C of the sweep does not reach it
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == NICE
        group = Path(f"/proc/{proc.pid}/autogroup")
        if not Path("/proc/self/autogroup").exists():
            pytest.skip("this kernel schedules no autogroups")
        assert group.read_text().split()[-1] == str(NICE)  # "/autogroup-123 nice 10"
    finally:
        proc.kill()
        proc.wait()
