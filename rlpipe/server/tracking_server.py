"""A local MLflow tracking server on PostgreSQL, started and stopped by `make server` / `make server-stop`.

PostgreSQL comes from the `pgserver` wheel (the `server` extra; `postgres.py`) on 127.0.0.1;
`mlflow server` runs on top of it with artifact proxying, detached from the command that started
it, so it outlives `make server`. Everything lives in one folder, by default `<project>/mlruns`:

    postgres/           PostgreSQL's data folder, with its log `postgres.log`
    server-artifacts/   the artifacts uploaded through the server (`mlflow-artifacts:/...`)
    server.json         the running server: pid (of its process group), URI, PostgreSQL's port
    server.log          the server's output

    python -m rlpipe.server start|stop|status [--port 5001] [--data DIR]

Both listen on 127.0.0.1 only and ask for no password: a single-user store, like the sqlite one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rlpipe.errors import RlpipeError, ServerError
from rlpipe.project import project_root
from rlpipe.server.postgres import alive, ensure_database, postgres_port, start_postgres, stop_postgres

log = logging.getLogger(__name__)
PORT = 5001
"""The server's default port (`make ui` keeps 5000 for the local sqlite store)."""
WORKERS = 2
"""uvicorn workers: enough for the jobs and a browser at once, cheap on a 2-core machine."""


@dataclass(frozen=True)
class ServerPaths:
    """Where one server keeps its state (the layout in the module docstring)."""

    pgdata: Path
    artifacts: Path
    state: Path
    log: Path

    @classmethod
    def under(cls, root: Path | None = None) -> ServerPaths:
        """The layout under `root` (default `<project>/mlruns`)."""
        r = (root or default_root()).resolve()
        return cls(r / "postgres", r / "server-artifacts", r / "server.json", r / "server.log")


def default_root() -> Path:
    """`<project>/mlruns`, beside the local sqlite store."""
    return Path(project_root()) / "mlruns"


def running(paths: ServerPaths) -> dict | None:
    """The state of the server started from `paths` ({pid, uri, postgres_port}) if it still runs."""
    if not paths.state.is_file():
        return None
    state = json.loads(paths.state.read_text())
    return state if alive(int(state["pid"])) else None


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""


def wait_healthy(uri: str, proc: subprocess.Popen, log_file: Path, timeout: float) -> None:
    """Poll `<uri>/health` until it answers OK; a server that exits or stays silent is an error."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"mlflow server exited with status {proc.returncode}; {log_file}:\n{_log_tail(log_file)}"
            )
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGTERM)
    raise ServerError(
        f"mlflow server did not answer {uri}/health within {timeout:.0f} s (stopped it); "
        f"{log_file}:\n{_log_tail(log_file)}"
    )


def start_server(paths: ServerPaths, port: int, backend: str, timeout: float) -> subprocess.Popen:
    """Start `mlflow server` on `backend` with artifact proxying, detached; returns once healthy."""
    paths.artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend,
        "--serve-artifacts", "--artifacts-destination", str(paths.artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
    ]  # fmt: skip
    # MLflow's job runner (GenAI scorers) would add seven Python processes that rlpipe never uses.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(paths.log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    wait_healthy(f"http://127.0.0.1:{port}", proc, paths.log, timeout)
    return proc


def start(root: Path | None = None, port: int = PORT, timeout: float = 180) -> str:
    """PostgreSQL, the database and the MLflow server, each started unless running; returns the URI."""
    paths = ServerPaths.under(root)
    state = running(paths)
    if state is not None:
        log.info("the tracking server is already running at %s (pid %s)", state["uri"], state["pid"])
        return str(state["uri"])
    with socket.socket() as probe:  # before anything starts: a busy port is the user's to change
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise ServerError(f"port {port} on 127.0.0.1 is already in use: pass another one (--port N)")
    pg_port = start_postgres(paths.pgdata)
    backend = ensure_database(pg_port)
    began = time.monotonic()
    proc = start_server(paths, port, backend, timeout)
    uri = f"http://127.0.0.1:{port}"
    paths.state.write_text(json.dumps({"pid": proc.pid, "uri": uri, "postgres_port": pg_port}))
    log.info("MLflow tracking server at %s (up in %.1f s; log %s)", uri, time.monotonic() - began, paths.log)
    return uri


def stop(root: Path | None = None) -> None:
    """Stop the MLflow server (its whole process group), then PostgreSQL."""
    paths = ServerPaths.under(root)
    state = running(paths)
    if state is not None:
        pid = int(state["pid"])
        os.killpg(pid, signal.SIGTERM)
        for _ in range(40):  # uvicorn lets its workers finish their requests
            if not alive(pid):
                break
            time.sleep(0.25)
        else:
            os.killpg(pid, signal.SIGKILL)
        log.info("stopped the MLflow server at %s", state["uri"])
    paths.state.unlink(missing_ok=True)
    if stop_postgres(paths.pgdata):
        log.info("stopped PostgreSQL (data %s)", paths.pgdata)


def status(root: Path | None = None) -> bool:
    """Log what runs; True when the MLflow server does."""
    paths = ServerPaths.under(root)
    state = running(paths)
    pg_port = postgres_port(paths.pgdata)
    log.info("MLflow server: %s", f"{state['uri']} (pid {state['pid']})" if state else "not running")
    log.info("PostgreSQL: %s (data %s)", f"127.0.0.1:{pg_port}" if pg_port else "not running", paths.pgdata)
    return state is not None


def main(argv: list[str] | None = None) -> int:
    """`python -m rlpipe.server start|stop|status`; exit 2 on an error a user can act on."""
    parser = argparse.ArgumentParser(prog="python -m rlpipe.server", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=PORT, help=f"the MLflow server's port (default {PORT})")
    parser.add_argument("--data", type=Path, default=None, help="state folder (default <project>/mlruns)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for /health")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        if args.action == "start":
            uri = start(args.data, args.port, args.timeout)
            log.info("use it: tracking=server (or tracking.uri=%s); stop it: make server-stop", uri)
        elif args.action == "stop":
            stop(args.data)
        else:
            return 0 if status(args.data) else 1
    except RlpipeError as exc:
        log.error("error: %s", exc)
        return 2
    return 0
