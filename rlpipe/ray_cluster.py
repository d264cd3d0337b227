"""A local Ray cluster, started and stopped by `make cluster` / `make cluster-stop`: a head
(`ray start --head`) and worker nodes joining it (`ray start --address=...`), each with its own CPU
count, all on this machine. It is the topology of a real cluster (README "A Ray cluster over
several machines") shrunk onto one machine, so that a sweep can be run and tested on it:

    python -m rlpipe.ray_cluster start|stop|status [--port 6380] [--nodes 2] [--num-cpus 1] [--data DIR]

Each node is one `ray start` run in a session of its own, and every process of that node (GCS,
raylet, agents, the workers that run the jobs) stays in that session: stopping the cluster ends
exactly those processes, by id. `ray stop` is never used, since it ends every Ray process of this
user on the machine, another cluster's too. The state lives in one folder, by default
`<project>/mlruns/ray-cluster`:

    cluster.json    the running cluster: the head's address, Ray's folder, per node its session id and CPUs
    node-<i>.log    the output of each `ray start` (node 0 is the head)

Ray's own files (sockets, its logs, the jobs' output) go to `<tmp>/rlpipe-ray-<port>`, a short path
because a unix socket's path may not exceed 107 bytes; they are removed with the cluster. The nodes
listen on 127.0.0.1 only and accept only clients holding Ray's token (`node_env`); the `ray`
package is never imported here (the `ray` command is run).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rlpipe.errors import ClusterError, RlpipeError
from rlpipe.project import project_root
from rlpipe.server.postgres import free_port

log = logging.getLogger(__name__)
PORT = 6380
"""The head's port (Ray's own default, 6379, is Redis's too)."""
OBJECT_STORE_MB = 128
"""Each node's object store: jobs pass a config and a score through it, not data (Ray's default
takes 30% of the machine's memory per node)."""
GRACE_S = 20.0
"""Seconds a node's processes have to end after SIGTERM before SIGKILL (Ray's GCS takes a while)."""


@dataclass(frozen=True)
class ClusterPaths:
    """Where one cluster keeps its state (the layout in the module docstring)."""

    root: Path

    @classmethod
    def under(cls, root: Path | None = None) -> ClusterPaths:
        """The layout under `root` (default `<project>/mlruns/ray-cluster`)."""
        return cls((root or Path(project_root()) / "mlruns" / "ray-cluster").resolve())

    @property
    def state(self) -> Path:
        return self.root / "cluster.json"

    def log(self, node: int) -> Path:
        return self.root / f"node-{node}.log"


def session_pids(sid: int) -> list[int]:
    """The live processes of session `sid` (Linux /proc; one node of the cluster)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended while we looked
        state, _, _, session = stat.rsplit(")", 1)[1].split()[:4]  # the fields after the name
        if int(session) == sid and state != "Z":  # a zombie has ended, only its parent has not reaped it
            pids.append(int(entry.name))
    return pids


def end_session(sid: int, grace_s: float = GRACE_S) -> int:
    """SIGTERM every process of session `sid`, SIGKILL those left after `grace_s`; returns their number."""
    pids = session_pids(sid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_pids(sid) if sig == signal.SIGKILL else pids:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5.0)
        while session_pids(sid) and time.monotonic() < deadline:
            time.sleep(0.25)
        if not session_pids(sid):
            break
    return len(pids)


def ray_command() -> list[str]:
    """`ray` of this interpreter's environment; the `ray` extra must be installed."""
    if importlib.util.find_spec("ray") is None:
        raise ClusterError(
            "the Ray cluster needs the `ray` extra: pip install -e '.[ray]' (or run `make cluster`)"
        )
    return [sys.executable, "-m", "ray.scripts.scripts"]


def node_command(node: int, address: str, temp_dir: Path, num_cpus: int, object_store_mb: int) -> list[str]:
    """The `ray start` of node `node`: the head (0) on `address`'s port, a worker joining `address`."""
    host, port = address.rsplit(":", 1)
    shared = [
        "--node-ip-address", host, "--num-cpus", str(num_cpus),
        "--object-store-memory", str(object_store_mb * 2**20),
        "--dashboard-agent-listen-port", str(free_port()), "--disable-usage-stats",
    ]  # fmt: skip
    if node == 0:
        head = [
            "--head", "--port", port, "--temp-dir", str(temp_dir), "--include-dashboard", "false",
            "--dashboard-port", str(free_port()), "--ray-client-server-port", str(free_port()),
        ]  # fmt: skip
        return [*ray_command(), "start", *head, *shared]
    return [*ray_command(), "start", "--address", address, *shared]


def node_env() -> dict[str, str]:
    """The environment of every node: this one, with token authentication unless RAY_AUTH_MODE says
    otherwise, and Ray's token created if there is none (`ray get-auth-token --generate`: in
    ~/.ray/auth_token, where Ray's own `ray.init()` creates it).

    Every node gets the same mode explicitly: left unset, `ray start --head` turns token
    authentication on whenever a token exists, while `ray start --address` does not, and the node
    is refused when it joins (Ray 2.60). So does a driver (the sweep's process) given the head's
    address (RAY_ADDRESS): it needs RAY_AUTH_MODE=token too, the token it reads by itself.
    """
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # the head is the one to join
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.setdefault("RAY_AUTH_MODE", "token")
    if env["RAY_AUTH_MODE"] == "token":
        got = subprocess.run([*ray_command(), "get-auth-token", "--generate"], env=env, capture_output=True)
        if got.returncode != 0:  # its stdout is the token: never shown
            raise ClusterError(
                f"`ray get-auth-token --generate` failed: {got.stderr.decode(errors='replace')[-2000:]}; "
                "to run the cluster without authentication, set RAY_AUTH_MODE=disabled"
            )
    return env


def start_node(cmd: list[str], log_file: Path, env: dict[str, str], timeout: float) -> int:
    """Run one `ray start` in a new session; returns the session id once the node is up."""
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=project_root(),  # the workers start here: the jobs find the project from it
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        rc = None
    if rc != 0:
        end_session(proc.pid)
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-30:])
        what = f"exited with status {rc}" if rc is not None else f"did not start within {timeout:.0f} s"
        raise ClusterError(f"`{' '.join(cmd[3:5])}` {what} (stopped it); {log_file}:\n{tail}")
    return proc.pid


def running(paths: ClusterPaths) -> dict | None:
    """The state of the cluster started from `paths` if its head still runs."""
    if not paths.state.is_file():
        return None
    state = json.loads(paths.state.read_text())
    return state if session_pids(int(state["nodes"][0]["sid"])) else None


def start(
    root: Path | None = None,
    port: int = PORT,
    nodes: int = 2,
    num_cpus: int = 1,
    object_store_mb: int = OBJECT_STORE_MB,
    timeout: float = 180,
) -> str:
    """The head and `nodes - 1` workers, `num_cpus` CPUs each, unless running; returns the head's address."""
    paths = ClusterPaths.under(root)
    state = running(paths)
    if state is not None:
        log.info("the Ray cluster is already running at %s", state["address"])
        return str(state["address"])
    with socket.socket() as probe:  # before anything starts: a busy port is the user's to change
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise ClusterError(f"port {port} on 127.0.0.1 is already in use: pass another one (--port N)")
    paths.root.mkdir(parents=True, exist_ok=True)
    address, temp_dir = f"127.0.0.1:{port}", Path(tempfile.gettempdir()) / f"rlpipe-ray-{port}"
    began, started, env = time.monotonic(), [], node_env()
    try:
        for node in range(nodes):
            cmd = node_command(node, address, temp_dir, num_cpus, object_store_mb)
            started.append({"sid": start_node(cmd, paths.log(node), env, timeout), "num_cpus": num_cpus})
    except BaseException:
        for done in reversed(started):
            end_session(int(done["sid"]))
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    paths.state.write_text(json.dumps({"address": address, "temp_dir": str(temp_dir), "nodes": started}))
    log.info("Ray cluster at %s: %d nodes x %d CPUs (up in %.1f s; logs %s)",
             address, nodes, num_cpus, time.monotonic() - began, paths.root)  # fmt: skip
    return address


def stop(root: Path | None = None) -> None:
    """End every process of every node, the workers first and the head last; remove Ray's folder."""
    paths = ClusterPaths.under(root)
    if not paths.state.is_file():
        log.info("no Ray cluster was started from %s", paths.root)
        return
    state = json.loads(paths.state.read_text())
    for i, node in reversed(list(enumerate(state["nodes"]))):
        began = time.monotonic()
        ended = end_session(int(node["sid"]))
        log.info("stopped node %d (%d processes, %.1f s)", i, ended, time.monotonic() - began)
    shutil.rmtree(state["temp_dir"], ignore_errors=True)
    paths.state.unlink()


def status(root: Path | None = None) -> bool:
    """Log the cluster's address and each node's processes; True when every node runs."""
    paths = ClusterPaths.under(root)
    state = json.loads(paths.state.read_text()) if paths.state.is_file() else None
    if state is None:
        log.info("Ray cluster: not running (%s)", paths.root)
        return False
    counts = [len(session_pids(int(node["sid"]))) for node in state["nodes"]]
    log.info("Ray cluster at %s (Ray's files: %s)", state["address"], state["temp_dir"])
    for i, (node, n) in enumerate(zip(state["nodes"], counts, strict=True)):
        what = f"{n} processes, {node['num_cpus']} CPUs" if n else "not running"
        log.info("  node %d (%s): %s", i, "head" if i == 0 else "worker", what)
    return all(counts)


def main(argv: list[str] | None = None) -> int:
    """`python -m rlpipe.ray_cluster start|stop|status`; exit 2 on an error a user can act on."""
    parser = argparse.ArgumentParser(prog="python -m rlpipe.ray_cluster", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=PORT, help=f"the head's port (default {PORT})")
    parser.add_argument("--nodes", type=int, default=2, help="nodes, the head included (default 2)")
    parser.add_argument("--num-cpus", type=int, default=1, help="CPUs each node offers (default 1)")
    parser.add_argument(
        "--object-store-mb", type=int, default=OBJECT_STORE_MB, help="each node's object store"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="state folder (default <project>/mlruns/ray-cluster)"
    )
    parser.add_argument("--timeout", type=float, default=180, help="seconds a node may take to start")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        if args.action == "start":
            address = start(
                args.data, args.port, args.nodes, args.num_cpus, args.object_store_mb, args.timeout
            )
            mode = os.environ.get("RAY_AUTH_MODE", "token")
            log.info("use it: RAY_ADDRESS=%s RAY_AUTH_MODE=%s python -m rlpipe.train -m "
                     "hydra/launcher=ray_cluster ...; stop it: make cluster-stop", address, mode)  # fmt: skip
        elif args.action == "stop":
            stop(args.data)
        else:
            return 0 if status(args.data) else 1
    except RlpipeError as exc:
        log.error("error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
