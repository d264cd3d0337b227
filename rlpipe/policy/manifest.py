"""A sha256 manifest over a stored policy's files: written when it is logged, checked before it is read.

The manifest (`rlpipe_manifest.json`, in the model folder) lists every other file of the folder
with its sha256; the sha256 of the manifest itself is recorded in the tracking store (on the
logged model, the run and the model version), out of reach of whoever can write the artifact
store. `verify_manifest` refuses a folder whose manifest does not match that record, or whose
files differ from the manifest: a changed, missing or extra file (a `python_model.pkl`, a zip).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

from rlpipe.errors import PolicyError
from rlpipe.files import sha256_of, write_atomic

MANIFEST = "rlpipe_manifest.json"
UNLISTED = frozenset({MANIFEST, "registered_model_meta"})
"""Files outside the manifest. MLflow writes `registered_model_meta` (the model's name and version,
YAML) into a local store's model folder itself whenever a models:/ URI is loaded or served;
rlpipe never reads it."""
_FORMAT = 1


def file_digests(folder: Path) -> dict[str, str]:
    """{relative POSIX path: sha256} of every file under `folder` but those of `UNLISTED`.

    Raises:
        PolicyError: the folder holds something other than plain files and folders (a link).
    """
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise PolicyError(f"{folder}: {rel} is not a plain file")
        if path.is_file() and rel not in UNLISTED:
            out[rel] = sha256_of(path)
    return out


def write_manifest(folder: Path) -> str:
    """Write the manifest of `folder`; returns its sha256 (the value to record in the store)."""
    text = json.dumps({"format": _FORMAT, "sha256": file_digests(folder)}, indent=1, sort_keys=True)
    write_atomic(folder / MANIFEST, lambda f: f.write((text + "\n").encode()))
    return sha256_of(folder / MANIFEST)


def verify_manifest(folder: Path, expected: str, where: str) -> None:
    """Check every file of `folder` against its manifest and the manifest against `expected`.

    Args:
        folder: the downloaded model folder.
        expected: the manifest's sha256 as recorded in the tracking store (never taken from the
            artifact: its writer could rewrite the manifest along with the files).
        where: the model URI, named in every error.

    Raises:
        PolicyError: naming `where` and the first file that does not match.
    """
    manifest = folder / MANIFEST
    if not manifest.is_file():
        _refuse(where, MANIFEST, "missing (no integrity record in the artifact)")
    found = sha256_of(manifest)
    if found != expected:
        _refuse(where, MANIFEST, f"sha256 {found[:16]}… differs from the recorded {expected[:16]}…")
    listed = json.loads(manifest.read_text())["sha256"]
    actual = file_digests(folder)
    for rel in sorted(set(listed) | set(actual)):
        if rel not in actual:
            _refuse(where, rel, "missing")
        if rel not in listed:
            _refuse(where, rel, "not in the manifest (a file added after the policy was logged)")
        if actual[rel] != listed[rel]:
            _refuse(where, rel, f"sha256 {actual[rel][:16]}… differs from the manifest's {listed[rel][:16]}…")


def _refuse(where: str, rel: str, problem: str) -> NoReturn:
    raise PolicyError(
        f"refusing policy {where}: {rel}: {problem}. Its files no longer match the sha256 "
        "manifest recorded when it was logged, so nothing of it was loaded; log or register "
        "the policy again from its training run, or restore the artifact store."
    )
