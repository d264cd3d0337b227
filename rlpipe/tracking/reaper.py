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

from rlpipe.errors import JobBusyError
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


def live_owner(run: Run, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> str | None:
    """Who may still be running a RUNNING run: its process when alive on this host, or when on
    another host and its heartbeat is fresh (job runs only); None when its owner is gone."""
    tags = run.data.tags
    token = tags.get(T.PROCESS, "")
    alive = process_alive(token) if token else None
    if alive:
        return f"process {token}"
    if alive is None and why_dead(run, stale_after_s, time.time() if now is None else now) is None:
        beat = tags.get(T.HEARTBEAT, "")
        since = (
            f"heartbeat {time.time() - float(beat):.0f} s ago"
            if beat.replace(".", "", 1).isdigit()
            else "no heartbeat"
        )
        return f"process {token or 'unknown'} on another host ({since})"
    return None


def reap_job(tracker: Tracker, config_hash: str, seed: int, job: str) -> list[str]:
    """Before a job starts: its RUNNING predecessors (same configuration and seed, in this store)
    whose process is dead are marked KILLED (their ids returned), so a killed job is closed even
    when no sweep reaps it; one whose owner may be alive refuses the job (`JobBusyError`)."""
    terms = (
        f"attributes.status = 'RUNNING' and tags.`{T.KIND}` = '{T.JOB}' and "
        f"tags.`{T.CONFIG_HASH}` = '{config_hash}' and tags.`{T.SEED}` = '{seed}'"
    )
    reaped = []
    for run in tracker.search(terms):
        owner = live_owner(run)
        if owner is not None:
            raise JobBusyError(
                f"job {job} is already running as MLflow run {run.info.run_id} ({owner}) in {tracker.uri}: "
                "wait for it to end, or stop it and rerun (resume=true continues it from its checkpoint)"
            )
        why = why_dead(run, STALE_AFTER_S, time.time()) or "its owner is gone"
        _kill(tracker, run, f"{why}; marked KILLED by a new attempt of the same job")
        reaped.append(run.info.run_id)
    return reaped


def _kill(tracker: Tracker, run: Run, why: str) -> None:
    tracker.handle(run.info.run_id).set_tags({T.ERROR: f"reaped: {why}"})
    tracker.finish(run.info.run_id, "KILLED")
    log.warning("run %s (%s) was RUNNING but %s", run.info.run_name, run.info.run_id, why)


def reap(tracker: Tracker, stale_after_s: float = STALE_AFTER_S, now: float | None = None) -> list[str]:
    """Mark the experiment's dead RUNNING runs KILLED with the reason; returns their ids."""
    now = time.time() if now is None else now
    reaped = []
    for run in tracker.search("attributes.status = 'RUNNING'"):
        why = why_dead(run, stale_after_s, now)
        if why is None:
            continue
        _kill(tracker, run, f"{why}; marked KILLED by rlpipe.runs reap")
        reaped.append(run.info.run_id)
    return reaped
