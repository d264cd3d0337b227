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
warm-ups). A sweep that stops before its jobs (its store unreachable) kills the warmed workers,
which run no job yet.

The workers share one import of those modules: they are forked from a fork server (multiprocessing's
`forkserver`, loky's start method for the sweep) that imported `WORKER_MODULES` while the launching
process started the sweep. Two workers each importing torch, SB3 and MLflow was ~4 CPU-s apiece on
a machine of two cores, beside the launching process; one import is enough. The server imports them
with Python's collector off and freezes what they built (`cli.collection.imports_uncollected`), so
the import is shorter and no worker's search for cycles walks the heap it inherits. The fork server is a
fresh interpreter started by this process, not a fork of it, and it only imports: it holds no
MLflow database engine or connection, no torch thread pool has run in it, and a worker opens its
own store connection after the fork, so no database handle, lock or thread crosses a fork.

Once every job has returned, the idle workers are told to exit and the fork server is stopped
(`release`): their teardown (seconds each, torch and MLflow loaded) overlaps the sweep step instead
of holding up the command's exit or the end of its output. The workers are not killed: a job's
detached tear-sheet process, their child, must outlive them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from multiprocessing import forkserver
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rlpipe.tracking.config import TrackingConfig

log = logging.getLogger(__name__)
_stopped = threading.Event()
_lock = threading.Lock()
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
# What a job imports, imported once by the fork server its workers are forked from
# (`rlpipe.cli.worker_imports`, its one preloaded module). Not the task function's own module,
# `rlpipe.train`: a worker runs the launching process's main module afresh as `__mp_main__`
# (multiprocessing's spawn preparation, so what the jobs pickled from `__main__` resolves), and
# runpy warned on every worker's stderr when it found that module imported already.
WORKER_MODULES = (
    "rlpipe.cli.commands",  # what `rlpipe.train` imports: Hydra, the schemas, the callback
    "rlpipe.cli.failures",
    "hydra.main",
    "rlpipe.jobs.train_job",  # torch, SB3, the simulator, the store's client
    "rlpipe.jobs.pbt_job",
    "torch._dynamo",  # what torch's first optimizer step imports (about a second)
    "mlflow.pyfunc",  # what the first policy logged imports
    "mlflow.store.tracking.sqlalchemy_store",
    "hydra_plugins.hydra_joblib_launcher._core",  # the launcher's `execute_job`
)
PRELOAD = "rlpipe.cli.worker_imports"


def start(launcher: DictConfig, tracking: TrackingConfig) -> threading.Thread | None:
    """Warm joblib's workers in the background (None: the launcher is not joblib)."""
    if launcher.get("_target_") != JOBLIB_LAUNCHER:
        return None
    settings = parallel_settings(launcher)
    _fork_server.serve()
    thread = threading.Thread(
        target=_warm, args=(settings, tracking), name="rlpipe-warm-workers", daemon=True
    )
    thread.start()
    return thread


class _ForkServer:
    """The fork server of a sweep's workers: loky's start method while it serves, restored after."""

    def __init__(self) -> None:
        self._previous: list[str | None] = []  # loky's start method before; empty: not serving
        self._release: threading.Thread | None = None

    def serve(self) -> None:
        """Start the fork server now, its imports beside the launching process's, and have loky's
        workers forked from it. Where there is no fork server (Windows) or it cannot start, the
        workers are loky's own fresh processes, as before: slower to start, the same jobs."""
        from joblib.externals.loky.backend import context

        if self._release is not None:  # an earlier sweep of this process still letting its pool go
            self._release.join()
        if "forkserver" not in multiprocessing.get_all_start_methods():
            return
        self._previous = [context.get_start_method()]
        multiprocessing.get_context("forkserver").set_forkserver_preload([PRELOAD])
        context.set_start_method("forkserver", force=True)
        try:
            forkserver.ensure_running()
        except OSError:
            log.warning("joblib's fork server did not start; its workers import on their own", exc_info=True)
            self.stop()

    def release(self, pool: Any) -> None:
        """In the background: the pool's workers told to exit and awaited, then the server ended
        (until they have exited, it is what tells loky that they did)."""

        def let_go() -> None:
            if pool is not None:
                pool.shutdown(wait=True)
            self.stop()

        self._release = threading.Thread(target=let_go, name="rlpipe-release-pool", daemon=True)
        self._release.start()

    def stop(self) -> None:
        """End the fork server (if this sweep started one) and give loky back its start method."""
        if not self._previous:
            return
        from joblib.externals.loky.backend import context

        context.set_start_method(self._previous.pop(), force=True)
        server: Any = forkserver._forkserver  # multiprocessing's own, which has no public stop
        if server._forkserver_pid is not None:
            # it holds nothing but its imports: ended at once, not after a second of interpreter
            # teardown with the command's output still open in it
            with contextlib.suppress(ProcessLookupError):
                os.kill(server._forkserver_pid, signal.SIGTERM)
        server._stop()  # its lifeline closed, the process reaped


_fork_server = _ForkServer()


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
    """Tell joblib's idle workers to exit, and end the fork server once they have, without waiting
    (see above). A later launch in this process (a PBT round) starts a new pool."""
    _fork_server.release(_pool())


def stop() -> None:
    """Kill the workers warmed for a sweep that stops before any job, so its exit does not wait for them."""
    with _lock:
        _stopped.set()
        pool = _pool()
    if pool is not None:
        pool.shutdown(wait=False, kill_workers=True)
    _fork_server.stop()


def _pool() -> Any:
    loky = sys.modules.get("joblib.externals.loky.reusable_executor")  # none unless joblib started one
    return getattr(loky, "_executor", None)


def warm_worker(tracking: TrackingConfig) -> int:
    """In a worker: what its first job would pay once; returns the worker's pid. The imports are
    the fork server's already (see above); the compiled simulator, torch's state and the store's
    client are the worker's own."""
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
