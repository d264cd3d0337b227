"""Connecting to a tracking store: a client that survives the faults of a store many processes share.

- A local sqlite store is first touched under an inter-process file lock (`<db>.lock`): MLflow
  builds its schema with alembic migrations on the first call, and two processes doing that at
  once crash, or leave the database broken for good (`table _alembic_tmp_tags already exists`).
- A tracking server must answer `/health` within seconds, or the command stops with an error
  naming `tracking.uri` and how to start one; MLflow's own HTTP retries per request are bounded by
  `tracking.retries` and `tracking.timeout_s` (its defaults retry for about 4.5 minutes).
- Every client call is retried on a transient store error (a locked or read-only database or
  folder, a server answering "temporarily unavailable") with backoff 0.5, 1, 2, 4... s.
  Retrying is safe: a failed sqlite or server call has rolled its transaction back.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE, ErrorCode
from mlflow.tracking import MlflowClient

from rlpipe.errors import StoreError

log = logging.getLogger(__name__)
DEFAULT_RETRIES, DEFAULT_TIMEOUT_S = 6, 30
PROBE_TRIES = 3
"""Tries of a server's /health, one second apart, before the command stops."""
# MLflow logs every database error with its traceback before raising it; rlpipe retries or reports it.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def is_transient(exc: BaseException) -> bool:
    """A store error that may clear by itself: locked or read-only database, read-only folder."""
    if isinstance(exc, MlflowException):
        return exc.error_code == ErrorCode.Name(TEMPORARILY_UNAVAILABLE)
    return isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EROFS)


class RetryingClient(MlflowClient):
    """An `MlflowClient` whose public calls are retried on transient store errors.

    Only the outermost call retries (a client method calling another would otherwise multiply
    the waits).
    """

    def __init__(self, uri: str, retries: int = DEFAULT_RETRIES) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self._retries = retries
        self._depth = threading.local()

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(attr) or not hasattr(attr, "__self__"):
            return attr
        return functools.partial(object.__getattribute__(self, "_call"), attr)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        depth = getattr(self._depth, "n", 0)
        self._depth.n = depth + 1
        try:
            return fn(*args, **kwargs) if depth else with_retries(fn, self._retries, *args, **kwargs)
        finally:
            self._depth.n = depth


def with_retries(fn: Callable[..., Any], retries: int, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)`, tried again up to `retries` times on a transient store error."""
    for attempt in range(retries + 1):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if attempt == retries or not is_transient(exc):
                raise
            pause = 0.5 * 2**attempt
            first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            log.warning(
                "transient store error in %s (%s); retry %d of %d in %.1f s",
                getattr(fn, "__name__", "call"), first_line, attempt + 1, retries, pause,
            )  # fmt: skip
            time.sleep(pause)
    raise AssertionError("unreachable")


def connect(uri: str, retries: int = DEFAULT_RETRIES, timeout_s: int = DEFAULT_TIMEOUT_S) -> MlflowClient:
    """A retrying client of the store at `uri` (tracking and registry), checked as described above."""
    if uri.startswith(("http://", "https://")):
        _bound_http(retries, timeout_s)
        probe_server(uri, timeout_s)
    if not uri.startswith("sqlite:///"):
        return RetryingClient(uri, retries)
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}.lock", timeout=300):  # the schema is built (or migrated) by one process
        client = RetryingClient(uri, retries)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


def _bound_http(retries: int, timeout_s: int) -> None:
    """MLflow reads its HTTP retry policy from the environment; a value the user set there wins."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(timeout_s))


def probe_server(uri: str, timeout_s: int = DEFAULT_TIMEOUT_S) -> None:
    """Refuse, within seconds, a tracking server that does not answer its /health endpoint."""
    problem = ""
    for attempt in range(PROBE_TRIES):
        try:
            reply = requests.get(f"{uri.rstrip('/')}/health", timeout=min(5, timeout_s))
        except requests.Timeout:
            problem = f"no answer within {min(5, timeout_s)} s"
        except requests.ConnectionError as exc:
            problem = "connection refused" if "refused" in str(exc) else f"cannot connect: {str(exc)[:160]}"
        else:
            if reply.ok:
                return
            problem = f"GET /health answered HTTP {reply.status_code}: is it an MLflow tracking server?"
        if attempt + 1 < PROBE_TRIES:
            time.sleep(1.0)
    raise StoreError(
        f"tracking.uri={uri}: no MLflow tracking server answers there after {PROBE_TRIES} tries "
        f"({problem}); start one with `make server` (PostgreSQL + MLflow on 127.0.0.1), or point "
        "tracking.uri at a running server (tracking=local records to the local sqlite store)"
    )
