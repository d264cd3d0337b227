"""Who runs a job: the lock on its folder, the owner record beside it, and a worker that stops with
the process that launched it.

- `FolderLock`: an exclusive `flock` on `<job folder>.lock`, taken before the job reads, clears or
  reuses anything and held until it ends. The kernel releases it when its process dies (`kill -9`
  included), so a held lock *is* a live owner on this machine: a second copy of the job is refused
  with one line naming that owner, instead of training the same run or wiping its checkpoints.
- `owner.json` in the job folder: the owner's process (host:pid:start time) and, from the moment
  its MLflow run is opened, the run id, so a job killed before its first saved state is resumed in
  that same run.
- `watch_launcher`: a job running in a worker process (joblib/loky, submitit) whose launching
  process has died stops itself (its run is closed KILLED and stays resumable) and its worker
  exits, instead of training on as an orphan. The sweep sets `RLPIPE_LAUNCHER` (its process token) before
  the workers start; a job in the launching process itself, or on another host, is not watched.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from rlpipe.errors import JobBusyError, Terminated
from rlpipe.files import write_atomic
from rlpipe.tracking.process import process_alive, process_token

log = logging.getLogger(__name__)
OWNER = "owner.json"
LAUNCHER_ENV = "RLPIPE_LAUNCHER"
"""The process token of the command that launched a sweep's workers (set by the sweep callback)."""
WATCH_EVERY_S = 1.0
GRACE_S = 60.0
"""After asking an orphaned job to stop, the seconds it has to close its run before it is ended."""


class FolderLock:
    """An exclusive, non-blocking lock on one job folder, held by this process while the job runs."""

    def __init__(self, folder: Path, job: str) -> None:
        self.folder, self.job = folder, job
        self.path = folder.with_name(f"{folder.name}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or refuse: `JobBusyError` names the live owner from its record."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JobBusyError(self._busy_message()) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def _busy_message(self) -> str:
        owner = read_owner(self.folder) or {}
        who = owner.get("process", "another process")
        run = f", MLflow run {owner['run_id']}" if owner.get("run_id") else ""
        return (
            f"job {self.job} is already running (process {who}{run}; folder {self.folder}): wait for it "
            "to end, or stop that process and rerun with resume=true to continue its run"
        )


def write_owner(folder: Path, run_id: str | None) -> None:
    """Record this process as the folder's owner, with the MLflow run it trains (once opened)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"process": process_token(), "run_id": run_id, "since": time.time()}
    write_atomic(folder / OWNER, lambda f: f.write(json.dumps(record).encode()))


def read_owner(folder: Path) -> dict[str, str] | None:
    """The folder's owner record, or None when there is none (or it cannot be read)."""
    try:
        raw = json.loads((folder / OWNER).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


@contextlib.contextmanager
def watch_launcher(token: str | None = None) -> Iterator[None]:
    """While the block runs, stop this job if the process that launched it dies (see the module
    docstring); `token` defaults to `RLPIPE_LAUNCHER` from the environment.

    The watcher thread signals the job's own process (SIGUSR1; a sweep worker ignores SIGINT); the
    handler raises `Terminated` in the job, which closes its run KILLED on the way out, and the
    orphaned worker then exits instead of waiting for work from a launcher that is gone.
    """
    token = token if token is not None else os.environ.get(LAUNCHER_ENV, "")
    watched = bool(token) and token != process_token() and process_alive(token) is True
    if not watched or threading.current_thread() is not threading.main_thread():
        yield  # not a worker, a launcher on another host or already gone, or no signals here
        return
    orphaned, done = threading.Event(), threading.Event()
    previous = signal.signal(signal.SIGUSR1, _stop_orphan)
    watcher = threading.Thread(target=_watch, args=(token, orphaned, done), daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        signal.signal(signal.SIGUSR1, previous)
        if orphaned.is_set():
            logging.shutdown()
            os._exit(143)  # nobody is left to take the job's outcome: the run is closed, the worker ends


def _stop_orphan(signum: int, frame: object) -> None:
    raise Terminated("the process that launched this job died")


def _watch(token: str, orphaned: threading.Event, done: threading.Event) -> None:
    while not done.wait(WATCH_EVERY_S):
        if process_alive(token) is False:
            log.error("the process that launched this job (%s) is gone: stopping the job", token)
            orphaned.set()
            os.kill(os.getpid(), signal.SIGUSR1)
            if not done.wait(GRACE_S):
                os._exit(143)  # the job did not stop in time (e.g. stuck in a store call)
            return
