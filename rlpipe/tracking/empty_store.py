"""A new local sqlite store starts as a copy of the empty store MLflow built once on this machine.

MLflow builds a new store's schema by running its alembic migrations, one Python file each: 1.5 s
of every first command on a new store, and of every test that makes one. The schema depends only
on MLflow's version, so the store MLflow's own `_initialize_tables` leaves (tables and the alembic
revision, nothing that names a path or an experiment) is built once per MLflow version in the
user's cache folder, and a new store is a copy of it. MLflow then opens the copy as it opens any
store: it checks the schema's revision and creates its default experiment itself. If the empty
store cannot be built or copied, MLflow builds the new store as before. Every local store is put in
write-ahead-log mode when a process first binds it (`write_ahead`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
from pathlib import Path

from filelock import FileLock

from rlpipe.files import copy_atomic

log = logging.getLogger(__name__)


def seed(db: Path) -> None:
    """Make the missing sqlite file `db` a copy of the empty store (the caller holds `db`'s lock)."""
    if db.exists():
        return
    try:
        copy_atomic(empty_store(), db)
    except Exception:  # MLflow builds the store itself, as it always did
        log.debug("no copy of the empty store for %s", db, exc_info=True)


def cache_folder() -> Path:
    """Where the empty store is kept: $XDG_CACHE_HOME/rlpipe, else ~/.cache/rlpipe."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rlpipe"


@functools.cache
def empty_store() -> Path:
    """The empty store of the installed MLflow version, built the first time one is needed."""
    import mlflow
    from mlflow.store.db.utils import _initialize_tables
    from sqlalchemy import create_engine

    path = cache_folder() / f"mlflow-{mlflow.__version__}-empty.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock", timeout=300):
        if path.exists():
            return path
        building = path.with_name(f"{path.name}.{os.getpid()}.building")
        building.unlink(missing_ok=True)
        engine = create_engine(f"sqlite:///{building}")
        try:
            _initialize_tables(engine)
        finally:
            engine.dispose()
        os.replace(building, path)
    return path


def write_ahead(db: Path) -> None:
    """Put the sqlite store `db` in write-ahead-log mode (kept in the file: once per store).

    With sqlite's default rollback journal a write waits until no process is reading, and a reader
    at the lowest priority (a job's detached tear-sheet drawing, on a machine whose cores train)
    can hold a read open for seconds: every job's and the sweep step's writes waited behind it
    (8 joblib jobs: 2.1 s more of job time and 1.4 s more of sweep step than without the drawing).
    In WAL mode readers and the writer do not wait for each other. The committed writes live in
    `<db>-wal` until sqlite folds them into `<db>`: copy a store with `sqlite3 <db> ".backup <copy>"`
    (or with both files). A store where the mode cannot be set (a read-only file, a network folder
    without shared memory) keeps its journal.
    """
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
            con.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:
        log.debug("%s keeps its rollback journal", db, exc_info=True)
