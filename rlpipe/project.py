"""Where the project checkout is, which commit of it a run used, and where `make ui` serves its store."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

LOCAL_UI = "http://127.0.0.1:5000"
"""Where `make ui` serves a local store (the Makefile's default PORT)."""


def project_root() -> str:
    """$RLPIPE_ROOT, else the nearest folder upwards from the cwd holding rlpipe's pyproject."""
    if os.environ.get("RLPIPE_ROOT"):
        return str(Path(os.environ["RLPIPE_ROOT"]).resolve())
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        pp = d / "pyproject.toml"
        if pp.is_file() and 'name = "rlpipe"' in pp.read_text():
            return str(d)
    return str(here)


def git_sha(root: Path) -> str:
    """HEAD of the project checkout; with uncommitted changes to tracked files, '-dirty-' and a hash
    of those changes, so that two different edits of the same commit never read as the same code."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not dirty:
            return sha
        diff = subprocess.run(["git", "diff", "HEAD"], cwd=root, capture_output=True, check=True).stdout
        return f"{sha}-dirty-{hashlib.sha1(diff).hexdigest()[:10]}"
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
