"""Files written atomically, and their sha256: the one place for both, with no torch or SB3 to import
(the CLI, the job folder's lock, the PBT ledger and its members' state folders use them before
anything trains). Every resumable state, manifest and record of rlpipe is written, or copied, through
`write_atomic`; every file checksum is `sha256_of`."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any


def sha256_of(path: Path) -> str:
    """The sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path: Path, write: Any) -> None:
    """Call `write(file)` on a temporary sibling of `path`, fsync it, rename it to `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a lost machine
    finally:
        os.close(dir_fd)


def copy_atomic(source: Path, path: Path) -> None:
    """Copy `source` to `path` through `write_atomic`: a reader sees the old file or the whole copy."""
    with source.open("rb") as f:
        write_atomic(path, lambda out: shutil.copyfileobj(f, out, 1 << 20))
