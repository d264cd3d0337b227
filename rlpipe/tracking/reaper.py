"""Runs left RUNNING by a process that died are found and marked KILLED, so the UI shows no ghosts.

Every run records the process that opened it (`rlpipe.process` = host:pid:start time) and a job
writes a heartbeat (`rlpipe.heartbeat`) every minute while it trains. A RUNNING run is dead when
its process is gone from this host (the start time guards against a reused pid), or, for a job
run opened on another host, when its heartbeat is older than `stale_after_s`. A sweep's parent
run opened on another host has no heartbeat and is left alone. `python -m rlpipe.runs reap` runs
this; every sweep runs it before its jobs start.
"""

from __future__ import annotations

import logging
import time

from mlflow.entities import Run

from rlpipe.tracking import tags as T
from rlpipe.tracking.process import process_alive
from rlpipe.tracking.tracker import Tracker

log = logging.getLogger(__name__)
STALE_AFTER_S = 900.0
"""A job on another host whose heartbeat is older than this (15 minutes) is dead."""


def why_dead(run: Run, stale_after_s: float, now: float) -> str | None:
    """Why a RUNNING run is dead, or None if it may be alive."""
    tags = run.data.tags
    token = tags.get(T.PROCESS, "")
    alive = process_alive(token) if token else None
    if alive is False:
        return f"its process ({token}) is gone"
    beat = tags.get(T.HEARTBEAT, "")
    if alive is None and tags.get(T.KIND) == T.JOB and beat.replace(".", "", 1).isdigit():
        silent = now - float(beat)
        if silent > stale_after_s:
            return f"no heartbeat for {silent / 60:.0f} min (process {token or 'unknown'})"
    return None


def reap(tracker: Tracker, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> list[str]:
    """Mark the experiment's dead RUNNING runs KILLED with the reason; returns their ids."""
    now = time.time() if now is None else now
    reaped = []
    for run in tracker.search("attributes.status = 'RUNNING'"):
        why = why_dead(run, stale_after_s, now)
        if why is None:
            continue
        handle = tracker.handle(run.info.run_id)
        handle.set_tags({T.ERROR: f"reaped: {why}; marked KILLED by rlpipe.runs reap"})
        tracker.finish(run.info.run_id, "KILLED")
        log.warning("run %s (%s) was RUNNING but %s: marked KILLED", run.info.run_name, run.info.run_id, why)
        reaped.append(run.info.run_id)
    return reaped
