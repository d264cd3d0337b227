"""PostgreSQL for the local tracking server: the binaries of the `pgserver` wheel, run on 127.0.0.1.

pgserver's own handle listens on a unix socket only and stops the server when the Python process
that started it exits; the tracking server needs the opposite (a TCP port, a server that outlives
`make server`), so only its bundled binaries and its root helpers are used. Connections from
127.0.0.1 are trusted (no password): a single-user store on one machine, not one to expose.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import tempfile
import warnings
from pathlib import Path

from rlpipe.errors import ServerError

log = logging.getLogger(__name__)
DATABASE = "mlflow"
SYSTEM_USER = "pgserver"
"""PostgreSQL refuses to run as root; as root it runs as this user (the one pgserver creates)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a child of this process that ended is reaped, not alive)."""
    with contextlib.suppress(ChildProcessError):  # not our child: nothing to reap
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, and someone else's
        pass
    return True


def _program(name: str) -> str:
    try:
        with warnings.catch_warnings():  # its import warns about XDG_RUNTIME_DIR, which is not used here
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import POSTGRES_BIN_PATH
    except ImportError as exc:
        raise ServerError(
            "the tracking server needs the `server` extra: pip install -e '.[server]' (or run `make server`)"
        ) from exc
    return str(POSTGRES_BIN_PATH / name)


def _system_user(pgdata: Path) -> str | None:
    """The user PostgreSQL runs as: None (this one) unless this one is root."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

    entry = ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)  # that user must traverse the folders above its data
    ensure_prefix_permissions(Path(_program("initdb")))  # and above its programs (a venv in a private folder)
    if entry is not None:
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _run(args: list[str], pgdata: Path) -> None:
    """Run a PostgreSQL program on `pgdata`; a failure names the command and shows its output."""
    cmd = [_program(args[0]), "-D", str(pgdata), *args[1:]]
    # A file, not a pipe: the postmaster that pg_ctl starts would keep a pipe open forever.
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            cmd, stdout=out, stderr=subprocess.STDOUT, user=_system_user(pgdata), timeout=90
        )
        out.seek(0)
        text = out.read()
    if done.returncode != 0:
        raise ServerError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{text[-3000:]}")


def postgres_port(pgdata: Path) -> int | None:
    """The port of the PostgreSQL running on `pgdata` (from its postmaster.pid), or None."""
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.is_file():
        return None
    lines = pidfile.read_text().splitlines()
    if len(lines) < 4 or not lines[3].strip() or not alive(int(lines[0])):
        return None
    return int(lines[3])


def start_postgres(pgdata: Path) -> int:
    """Start PostgreSQL on `pgdata` (initialised on first use) on a free port; returns the port."""
    running = postgres_port(pgdata)
    if running is not None:
        return running
    pgdata.mkdir(parents=True, exist_ok=True)
    if not (pgdata / "PG_VERSION").exists():
        log.info("creating the PostgreSQL data folder %s", pgdata)
        _run(["initdb", "--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata)
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k ''"  # TCP on 127.0.0.1 only; no unix socket
    _run(["pg_ctl", "-w", "-t", "60", "-l", str(pgdata / "postgres.log"), "-o", options, "start"], pgdata)
    log.info("PostgreSQL on 127.0.0.1:%d (data %s)", port, pgdata)
    return port


def ensure_database(port: int, name: str = DATABASE) -> str:
    """Create database `name` unless it exists; returns its SQLAlchemy URI (psycopg 3 driver)."""
    import psycopg

    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


def stop_postgres(pgdata: Path) -> bool:
    """Stop the PostgreSQL running on `pgdata` (fast: open sessions are ended); False if none was."""
    if postgres_port(pgdata) is None:
        return False
    _run(["pg_ctl", "-w", "-m", "fast", "stop"], pgdata)
    return True
