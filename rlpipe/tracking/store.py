"""Connecting to a tracking store: a client that survives the faults of a store many processes share,
and gives up on a store that went away within a bounded time.

- A local sqlite store is first touched under an inter-process file lock (`<db>.lock`): MLflow
  builds its schema with alembic migrations on the first call, and two processes doing that at
  once crash, or leave the database broken for good (`table _alembic_tmp_tags already exists`).
- A tracking server must answer `/health` within seconds, or the command stops with an error
  naming `tracking.uri` and how to start one.
- Every client call is retried on a transient store error (a locked or read-only database or
  folder, a server answering "temporarily unavailable" or not answering at all) with backoff
  0.5, 1, 2, 4... s, for at most `tracking.retry_s` seconds in all; then `StoreUnavailable`
  (a user error) names the store and what to do. Retrying is safe: a failed sqlite or server
  call has rolled its transaction back.
- MLflow's own HTTP retries (about 4.5 minutes per request by default) are turned off during
  this client's calls, so the one retry loop above owns the time; the request timeout is
  `tracking.timeout_s`. See `_mlflow_env` for why they travel through the environment, set only
  around each call and only where the user has not set them, so two clients in one process each
  keep their own settings.

A process binds each store once (`bind`): the check above runs on the first tracker of a URI, and
every later tracker, notebook read or policy loader of that URI in the process gets the same
client. Nothing happens at import: MLflow's log levels are set when a store is first bound.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from filelock import FileLock
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import REQUEST_LIMIT_EXCEEDED, TEMPORARILY_UNAVAILABLE, ErrorCode
from mlflow.tracking import MlflowClient

from rlpipe.errors import StoreError, StoreUnavailable
from rlpipe.tracking import empty_store

log = logging.getLogger(__name__)
DEFAULT_RETRY_S, DEFAULT_TIMEOUT_S = 30.0, 30
PROBE_TRIES = 3
"""Tries of a server's /health, one second apart, before the command stops."""
FIRST_PAUSE_S = 0.5
"""The first pause after a transient error; each next one doubles, cut to the budget left."""
_TRANSIENT_CODES = {ErrorCode.Name(TEMPORARILY_UNAVAILABLE), ErrorCode.Name(REQUEST_LIMIT_EXCEEDED)}
_BURIED = [
    (re.compile(r"too many (\d{3}) error responses"), "the server answered HTTP {}"),
    (re.compile(r"read timeout=([\d.]+)\)"), "no answer within {} s (tracking.timeout_s)"),
]
_WRAPPING = ("(raised as a result of", "[SQL:", "[parameters:", "(Background on this error")
_GATEWAY = re.compile(r"failed with error code (408|429|502|503|504)\b|too many (408|429|502|503|504) error")
"""A server's answer that may clear: as MLflow words it, or (its own retries off, so urllib3 gives up
at once) as urllib3's "too many 503 error responses"; a 500 is the server's own error, not retried."""
_QUIET = {
    **dict.fromkeys(("mlflow", "alembic", "urllib3", "git"), logging.WARNING),  # migrations, env inference
    "mlflow.pyfunc": logging.ERROR,  # the cloudpickle notice, on every model logged
    # MLflow logs every database error with its traceback before raising it; rlpipe retries or reports it.
    "mlflow.store.db.utils": logging.CRITICAL,
    "urllib3.connectionpool": logging.ERROR,
}
"""MLflow's chatter that is noise for a user of rlpipe: the level each of these loggers is set to."""


def is_transient(exc: BaseException) -> bool:
    """A store error that may clear by itself: a locked or read-only database or folder, a server
    that is restarting, overloaded or not answering."""
    if isinstance(exc, MlflowException):
        if exc.error_code in _TRANSIENT_CODES or _GATEWAY.search(str(exc)):
            return True
        return _lost_connection(exc)  # MLflow wraps requests' errors, which stay as the context
    return isinstance(exc, PermissionError) or (isinstance(exc, OSError) and exc.errno == errno.EROFS)


def _lost_connection(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, requests.ConnectionError | requests.Timeout):
            return True
    return False


class RetryingClient(MlflowClient):
    """An `MlflowClient` whose public calls are retried on transient store errors for at most
    `retry_s` seconds each, then end in `StoreUnavailable`.

    Only the outermost call retries (a client method calling another would otherwise multiply
    the waits).
    """

    def __init__(
        self, uri: str, retry_s: float = DEFAULT_RETRY_S, timeout_s: int = DEFAULT_TIMEOUT_S
    ) -> None:
        super().__init__(tracking_uri=uri, registry_uri=uri)
        self._store_uri, self._retry_s, self._timeout_s = uri, retry_s, timeout_s
        self._http = uri.startswith(("http://", "https://"))
        self._state = threading.local()

    def __getattribute__(self, name: str) -> Any:
        attr = object.__getattribute__(self, name)
        if name.startswith("_") or not callable(attr) or not hasattr(attr, "__self__"):
            return attr
        return functools.partial(object.__getattribute__(self, "_call"), attr)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        state = self._state
        depth = getattr(state, "depth", 0)
        if depth:
            return fn(*args, **kwargs)
        state.depth = 1
        try:
            budget = 0.0 if getattr(state, "once", False) else self._retry_s
            with _mlflow_env(self._http, self._timeout_s):
                return with_retries(functools.partial(fn, *args, **kwargs), budget, self._store_uri)
        finally:
            state.depth = 0

    def fetch_artifacts(self, artifact_uri: str, dst_path: str) -> str:
        """Download `artifact_uri` (a model's files) with this client's retries and HTTP bounds."""
        return str(
            download_artifacts(artifact_uri=artifact_uri, dst_path=dst_path, tracking_uri=self._store_uri)
        )


@contextmanager
def one_try(client: MlflowClient) -> Iterator[None]:
    """Calls on `client` inside the block are tried once: closing a run after the store went away
    must not spend another retry budget per call (the reaper closes what stays RUNNING)."""
    if not isinstance(client, RetryingClient):
        yield
        return
    state = client._state
    before = getattr(state, "once", False)
    state.once = True
    try:
        yield
    finally:
        state.once = before


def with_retries(call: Callable[[], Any], budget_s: float, uri: str = "") -> Any:
    """`call()`, tried again on a transient store error with backoff 0.5, 1, 2... s until `budget_s`
    seconds have passed since the first try; then `StoreUnavailable` (the last error its cause)."""
    start = time.monotonic()
    for attempt in range(1, 10_000):
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc):
                raise
            left = budget_s - (time.monotonic() - start)
            if left <= 0:
                raise StoreUnavailable(_gone(uri, exc, attempt, time.monotonic() - start, budget_s)) from exc
            pause = min(FIRST_PAUSE_S * 2 ** (attempt - 1), left)
            log.warning(
                "transient store error in %s (%s); try %d again in %.1f s (%.0f s of tracking.retry_s left)",
                getattr(call, "__name__", getattr(getattr(call, "func", None), "__name__", "call")),
                _first_line(exc), attempt + 1, pause, left,
            )  # fmt: skip
            time.sleep(pause)
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    """The line that says what happened (SQLAlchemy wraps it in notes about autoflush and SQL)."""
    lines = [x.strip() for x in str(exc).strip().splitlines()]
    said = [x for x in lines if x and not x.startswith(_WRAPPING)]
    line = (said or lines or [type(exc).__name__])[0]
    for found, says in _BURIED:  # urllib3's words end a long line, past what a user reads
        if match := found.search(line):
            line = f"{says.format(match.group(1))}: {line}"
    return line[:200] or type(exc).__name__


def _gone(uri: str, exc: BaseException, tries: int, elapsed: float, budget: float) -> str:
    """The one line a user reads when the store stays unusable: where, why, what happens next."""
    where = f"tracking.uri={uri}" if uri else "the tracking store"
    return (
        f"{where}: the store went away or turned read-only ({_first_line(exc)}); still failing after "
        f"{tries} tr{'y' if tries == 1 else 'ies'} in {elapsed:.0f} s (tracking.retry_s={budget:g}); the "
        "runs this command could not close stay RUNNING until `python -m rlpipe.runs reap` (with the "
        "same tracking overrides) marks them KILLED; rerun the command once the store is writable again"
    )


@contextmanager
def _mlflow_env(http: bool, timeout_s: int) -> Iterator[None]:
    """MLflow's settings for one call of this client: no artifact progress bars, and against a
    server no HTTP retries of MLflow's own (ours are bounded in time) and `timeout_s` per request.
    A value the user set in the environment wins and is left alone; the ones added are removed
    when the call ends.

    The environment is MLflow's only channel for these (MLflow 3.x): its REST stores call
    `rest_utils.call_endpoint`, which calls `http_request` without `max_retries` or `timeout`, so
    each request reads `MLFLOW_HTTP_REQUEST_MAX_RETRIES` / `MLFLOW_HTTP_REQUEST_TIMEOUT` from
    `os.environ`; its HTTP artifact repository and its artifact progress bar
    (`MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`) read them the same way, and a client has no store or
    session of its own to hand them to. So they are set for the call only, never for the process.
    rlpipe makes no two calls at once in a process; a thread calling MLflow meanwhile would see
    these values, and lose them when this call ends.
    """
    ours = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    if http:
        ours |= {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(timeout_s)}
    added = [k for k in ours if k not in os.environ]
    os.environ.update({k: ours[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def bind(uri: str, retry_s: float = DEFAULT_RETRY_S, timeout_s: int = DEFAULT_TIMEOUT_S) -> RetryingClient:
    """The process's client of the store at `uri`: checked (`connect`) the first time a URI is
    bound with these settings, the same client every later time.

    The bindings are the one cache of the package, explicit and keyed by the URI as written (and the
    two settings, which one `tracking` group fixes): a multirun with the basic launcher runs every
    job in one process, and each job's trackers share the one client of their URI, which holds no
    run, experiment or other job state. A store that goes away later is met by the client's
    retries, not by a second check. MLflow keeps one store (and one database engine) per URI for
    the process itself, so a binding keeps nothing alive that MLflow would not. The 16 latest
    bindings are kept (one more costs its check again); `unbind_all` forgets them (tests: a later
    test may meet another store at the same URI).
    """
    return _bound(uri, float(retry_s), int(timeout_s))


@functools.lru_cache(maxsize=16)
def _bound(uri: str, retry_s: float, timeout_s: int) -> RetryingClient:
    quiet_mlflow()
    return connect(uri, retry_s, timeout_s)  # an exception is not cached: the next bind checks again


def unbind_all() -> None:
    """Forget every binding of this process: the next `bind` of a URI checks its store again."""
    _bound.cache_clear()


def quiet_mlflow() -> None:
    """Set MLflow's loggers to the levels in `_QUIET`; done when a store is bound, never at import.
    Idempotent: setting them again sets the same levels."""
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)


def connect(uri: str, retry_s: float = DEFAULT_RETRY_S, timeout_s: int = DEFAULT_TIMEOUT_S) -> RetryingClient:
    """A new retrying client of the store at `uri` (tracking and registry), checked as described
    above; every caller goes through `bind`, which makes this check once per process and URI."""
    if uri.startswith(("http://", "https://")):
        probe_server(uri, timeout_s)
    if not uri.startswith("sqlite:///"):
        return RetryingClient(uri, retry_s, timeout_s)
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{db}.lock", timeout=300):  # the schema is built (or migrated) by one process
        empty_store.seed(db)  # a new store: a copy of the empty one, not MLflow's migrations again
        empty_store.write_ahead(db)
        client = RetryingClient(uri, retry_s, timeout_s)
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    return client


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
