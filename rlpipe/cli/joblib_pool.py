"""joblib's pool of workers around a sweep: started and warmed while the launching process starts
the sweep, let go before the sweep step.

A joblib worker imports a job's modules (Hydra, torch, SB3, MLflow) when its first job arrives, and
that first job pays the process's one-time costs: the compiled simulator loaded, torch's optimizer
machinery imported, the store's connection checked. That was about 6 s before the first job's
training and 4 s inside it, while the launching process, single-threaded, starts the sweep (MLflow
imported, dead runs reaped, the parent run opened) on a machine with a core to spare. So the
sweep callback asks joblib's pool for one `warm_worker` per worker before that: the workers do the
same work earlier, beside the launching process, and the jobs' own `Parallel` call reuses the pool
(joblib keeps one pool per process and reuses it for the same settings; the jobs queue behind the
warm-ups). Workers are started processes, never forks: no MLflow database engine is shared. A sweep that
stops before its jobs (its store unreachable) kills the warmed workers, which run no job yet.

Once every job has returned, the idle workers are told to exit (`release`): their teardown (seconds
each, torch and MLflow loaded) overlaps the sweep step instead of holding up the command's exit.
They are not killed: a job's detached tear-sheet process, their child, must outlive them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlpipe.tracking.config import TrackingConfig

log = logging.getLogger(__name__)
_stopped = threading.Event()
_lock = threading.Lock()
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def start(launcher: DictConfig, tracking: TrackingConfig) -> threading.Thread | None:
    """Warm joblib's workers in the background (None: the launcher is not joblib)."""
    if launcher.get("_target_") != JOBLIB_LAUNCHER:
        return None
    settings = parallel_settings(launcher)
    thread = threading.Thread(
        target=_warm, args=(settings, tracking), name="rlpipe-warm-workers", daemon=True
    )
    thread.start()
    return thread


def parallel_settings(launcher: DictConfig) -> dict[str, Any]:
    """The `joblib.Parallel` keywords hydra-joblib-launcher passes for this launcher config: the same
    settings, so the jobs' call reuses the pool warmed here."""
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

    given = OmegaConf.to_container(launcher, resolve=True)
    assert isinstance(given, dict)
    settings: dict[str, Any] = {str(k): v for k, v in given.items() if k != "_target_"}
    settings["backend"] = "loky"  # as the launcher sets it
    process_joblib_cfg(settings)
    return settings


def _warm(settings: dict[str, Any], tracking: TrackingConfig) -> None:
    from joblib import Parallel, delayed, effective_n_jobs

    try:
        workers = effective_n_jobs(settings["n_jobs"])
        with contextlib.ExitStack() as stack:
            with _lock:  # the pool exists once the lock is let go, so `stop` finds what it must kill
                if _stopped.is_set():
                    return
                parallel = stack.enter_context(Parallel(**settings))
            parallel(delayed(warm_worker)(tracking) for _ in range(workers))
    except Exception:  # a courtesy: a job pays its own warm-up if this did not happen
        log.debug("warming joblib's workers failed", exc_info=True)


def release() -> None:
    """Tell joblib's idle workers to exit now, without waiting (see above). A later launch in this
    process (a PBT round) starts a new pool."""
    pool = _pool()
    if pool is not None:
        pool.shutdown(wait=False)


def stop() -> None:
    """Kill the workers warmed for a sweep that stops before any job, so its exit does not wait for them."""
    with _lock:
        _stopped.set()
        pool = _pool()
    if pool is not None:
        pool.shutdown(wait=False, kill_workers=True)


def _pool() -> Any:
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")  # none unless joblib started one
    return getattr(loky, "_executor", None)


def warm_worker(tracking: TrackingConfig) -> int:
    """In a worker: what its first job would pay once; returns the worker's pid."""
    import rlpipe.train  # noqa: F401  the task function's module, with Hydra, the schemas, the callback
    from rlpipe.agents.setup import warm_up_torch
    from rlpipe.envs import kernels
    from rlpipe.jobs import pbt_job, train_job  # noqa: F401  what a job imports once its config is accepted
    from rlpipe.tracking.tracker import Tracker

    kernels.warm_up()
    warm_up_torch()
    try:
        Tracker.of(tracking)  # the store's client bound: the jobs' trackers take it
    except Exception:  # the job meets the store itself, and says what is wrong with it
        log.debug("warming the store's client failed", exc_info=True)
    return os.getpid()
