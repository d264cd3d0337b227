"""Which process opened a run, and whether it still lives (no mlflow: plain OS facts)."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), or '' where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22; the name in () may hold spaces


def process_token(pid: int | None = None) -> str:
    """host:pid:start-time of `pid` (default this process)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def ray_node_id() -> str | None:
    """The Ray node this process runs a task on, or None outside a Ray task.

    Read only when the process has already imported Ray (a Ray worker has): importing it here would
    cost every job a second or more, and `ray.get_runtime_context()` would start a local Ray.
    """
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    ctx = ray.get_runtime_context()
    return str(ctx.get_node_id()) if ctx.get_task_id() is not None else None  # a driver runs no task


def process_alive(token: str) -> bool | None:
    """Whether the process of `token` still runs; None when it ran on another host (unknown)."""
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    return not start or _start_time(pid) == start
