"""The registry lock: a mutex over the moves of one registered model, held in the store itself.

Creating a registered model is atomic in every MLflow store (its name is a primary key), so the
lock is the registered model `<name>.lock`, created on entry and deleted on exit: it works across
processes and machines sharing a tracking server, and on a local sqlite file. The lock names its
holder in words (description) and by process token (tag `rlpipe.process`, host:pid:start-time).

A lock whose holder is gone is broken, by the next waiter or by `python -m rlpipe.runs reap`:
at once when the holder ran on this host and its process is gone (the same test as the run
reaper's), after `LOCK_STALE_S` when it ran on another host (or recorded no token). Every break
is recorded as a tag `rlpipe.lock_broken.<UTC stamp>` on the registered model `<name>` (who,
whose lock, why) and logged, because the lock itself is deleted.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import socket
import time
from datetime import UTC, datetime

from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from rlpipe.errors import RegistryError
from rlpipe.tracking import tags as T
from rlpipe.tracking.process import process_alive, process_token

log = logging.getLogger(__name__)
LOCK_WAIT_S = 120.0
"""How long a sweep step waits for another one to release the registry."""
LOCK_STALE_S = 600.0
"""A lock older than this, held from another host, was left by a process that died; it is broken."""
LOCK_SUFFIX = ".lock"


def already_exists(exc: MlflowException) -> bool:
    return exc.error_code == ErrorCode.Name(RESOURCE_ALREADY_EXISTS)


def lock_taken(exc: MlflowException) -> bool:
    """Creating the lock failed because another process holds it. The create may also answer
    RESOURCE_DOES_NOT_EXIST: MLflow's store, refused a name that exists, reads that model back for its
    message, and the holder released it meanwhile (seen through a PostgreSQL server with two sweep
    steps at once). Both mean: try again."""
    return already_exists(exc) or exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def why_gone(lock: RegisteredModel, now: float) -> str | None:
    """Why the holder of `lock` is gone (so the lock may be broken), or None while it may live."""
    token = (lock.tags or {}).get(T.PROCESS, "")
    alive = process_alive(token) if token else None
    if alive is False:
        return f"its holder's process ({token}) is gone"
    age = now - lock.creation_timestamp / 1000.0
    if alive is None and age > LOCK_STALE_S:
        return f"{age:.0f} s old, held from {token or 'an unknown process'} (over {LOCK_STALE_S:.0f} s)"
    return None


def break_lock(client: MlflowClient, lock: RegisteredModel, why: str) -> bool:
    """Delete `lock` and record why on its registered model; False when another process broke or
    released it first."""
    try:
        client.delete_registered_model(lock.name)
    except MlflowException:
        return False
    model = lock.name.removesuffix(LOCK_SUFFIX)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")  # tag keys allow no '+'; sortable
    text = f"broken by {getpass.getuser()}@{socket.gethostname()}: {why} ({lock.description})"
    with contextlib.suppress(MlflowException):  # a lock taken before its model was first registered
        client.set_registered_model_tag(model, f"{T.LOCK_BROKEN_PREFIX}{stamp}", text)
    log.warning("registry lock %s %s", lock.name, text)
    return True


def release_dead_locks(client: MlflowClient, now: float | None = None) -> list[str]:
    """Break every registry lock of the store whose holder is gone (`why_gone`); returns their names."""
    now = time.time() if now is None else now
    released = []
    for lock in client.search_registered_models(f"name LIKE '%{LOCK_SUFFIX}'"):
        why = why_gone(lock, now)
        if why is not None and break_lock(client, lock, why):
            released.append(lock.name)
    return released


class RegistryLock:
    """A mutex over the moves of the registered model `name` (see the module docstring)."""

    def __init__(self, client: MlflowClient, name: str, wait_s: float = LOCK_WAIT_S) -> None:
        self.client = client
        self.name = f"{name}{LOCK_SUFFIX}"
        self.wait_s = wait_s

    def __enter__(self) -> RegistryLock:
        holder = f"held by {getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}"
        deadline, pause = time.monotonic() + self.wait_s, 0.05
        while True:
            try:
                self.client.create_registered_model(
                    self.name, tags={T.PROCESS: process_token()}, description=holder
                )
                return self
            except MlflowException as exc:
                if not lock_taken(exc):
                    raise
            self._break_if_gone()
            if time.monotonic() > deadline:
                raise RegistryError(self._held_message())
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def __exit__(self, *exc: object) -> None:
        try:
            self.client.delete_registered_model(self.name)
        except MlflowException:
            log.warning("registry lock %s was already gone (broken as its holder's?)", self.name)

    def _break_if_gone(self) -> None:
        try:
            lock = self.client.get_registered_model(self.name)
        except MlflowException:
            return  # released meanwhile
        why = why_gone(lock, time.time())
        if why is not None:
            break_lock(self.client, lock, why)

    def _held_message(self) -> str:
        try:
            holder = self.client.get_registered_model(self.name).description
        except MlflowException:
            holder = "unknown"
        return (
            f"the registry is busy: registered model '{self.name}' ({holder}) has been held for over "
            f"{self.wait_s:.0f} s by another sweep step; wait and rerun, or if no sweep step is "
            f"running run `python -m rlpipe.runs reap` (a holder on another host is broken after "
            f"{LOCK_STALE_S:.0f} s)"
        )
