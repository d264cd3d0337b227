"""A logged policy read back: a model URI resolved in the store, its files fetched and checked
against the sha256 the store records, the policy loaded.

`resolve_model` takes models:/<name>@<alias>, models:/<name>/<version>, models:/<model id> or
runs:/<run id>/policy and names what the store holds when the model is not there; `fetch_policy`
downloads a policy and checks every file against the recorded sha256 before anything reads it;
`load_policy` then builds it (`rlpipe.policy.model.PolicyModel`).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)

from rlpipe.errors import PolicyError, RegistryError
from rlpipe.policy.logged import ARTIFACT
from rlpipe.policy.manifest import verify_manifest
from rlpipe.policy.model import DATA, PolicyModel
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker

_NOT_THERE = {ErrorCode.Name(c) for c in (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, BAD_REQUEST)}
"""MLflow's answers to a model, version, alias or run that does not exist (or a malformed one)."""
LISTED = 10
"""Registered model names named at most in the error of a model that is not there."""


@dataclass(frozen=True)
class ModelRef:
    """What a model URI points at: registered name and version, the run that logged it, its files."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    source: str
    """Where the model's files are stored (an artifact URI of the store)."""
    sha256: str | None = None
    """The manifest's sha256 recorded in the store (None: no record, the policy is refused)."""


def resolve_model(tracker: Tracker, model_uri: str, key: str = "model") -> ModelRef:
    """Resolve models:/name@alias, models:/name/N, models:/<model id> or runs:/<run id>/<name>.

    Raises:
        RegistryError: a malformed URI, or a model, version, alias or run the store does not hold
            (named with the config `key` it came from), before anything is recorded or trained.
    """
    try:
        return _resolve(tracker, model_uri, key)
    except MlflowException as exc:
        if exc.error_code not in _NOT_THERE:
            raise
        first = str(exc.message).strip().splitlines()[0][:300] if str(exc.message).strip() else exc.error_code
        held = _registered(tracker, model_uri)
        raise RegistryError(
            f"{key}={model_uri}: not in the store at {tracker.uri} ({first}){held}; "
            "pass a registered version (models:/<name>/<version>), an alias that is set "
            "(models:/<name>@champion) or runs:/<run id>/policy of a run in that store (`make ui` lists them)"
        ) from exc


def _registered(tracker: Tracker, model_uri: str) -> str:
    """What the registry holds beside a models:/<name>@<alias> or models:/<name>/<version> that is not
    there: the model's aliases and versions, or the registered models' names when no model has that
    name; "" for other URIs, or when the store cannot be listed (the error stands without it)."""
    if not model_uri.startswith("models:/") or model_uri.startswith("models:/m-"):
        return ""
    name = re.split("[@/]", model_uri.removeprefix("models:/"), maxsplit=1)[0]
    try:
        try:
            aliases = tracker.client.get_registered_model(name).aliases
        except MlflowException:
            names = sorted(m.name for m in tracker.client.search_registered_models(max_results=1000))
            listed = ", ".join(names[:LISTED]) + (
                f", ... ({len(names)} in all)" if len(names) > LISTED else ""
            )
            return (
                f"; registered models there: {listed}" if names else "; the store holds no registered model"
            )
        versions = sorted(int(v.version) for v in Registry(tracker.client, name).all_versions())
    except MlflowException:
        return ""
    held = ", ".join(f"@{a} (v{v})" for a, v in sorted(aliases.items()))
    count = f"{len(versions)} version(s), v{versions[0]} to v{versions[-1]}" if versions else "no version"
    return f"; {name} has " + (f"the aliases {held} and {count}" if held else f"no alias and {count}")


def _resolve(tracker: Tracker, model_uri: str, key: str) -> ModelRef:
    client = tracker.client
    if model_uri.startswith("models:/m-"):
        model = client.get_logged_model(model_uri.removeprefix("models:/"))
        return ModelRef(model_uri, None, None, model.source_run_id, model.artifact_location,
                        model.tags.get(T.POLICY_SHA256))  # fmt: skip
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.partition("/")
            mv = client.get_model_version(name, version)
        source = client.get_model_version_download_uri(name, str(mv.version))
        return ModelRef(model_uri, name, str(mv.version), mv.run_id, source, mv.tags.get(T.POLICY_SHA256))
    if model_uri.startswith("runs:/"):
        run_id, _, name = model_uri.removeprefix("runs:/").partition("/")
        location, digest = _logged_model_of(tracker, run_id, name or ARTIFACT)
        return ModelRef(model_uri, None, None, run_id, location, digest)
    raise RegistryError(
        f"{key}={model_uri!r}: expected models:/<name>@<alias>, models:/<name>/<version> "
        "or runs:/<run id>/policy"
    )


def _logged_model_of(tracker: Tracker, run_id: str, name: str) -> tuple[str, str | None]:
    experiment = tracker.client.get_run(run_id).info.experiment_id
    query = f"name = '{name}' AND source_run_id = '{run_id}'"
    found = tracker.client.search_logged_models(
        experiment_ids=[experiment], filter_string=query, max_results=1
    )
    if not found:
        raise RegistryError(f"run {run_id} logged no model named {name!r}")
    return str(found[0].artifact_location), found[0].tags.get(T.POLICY_SHA256)


def fetch_policy(tracker: Tracker, ref: ModelRef, dst: Path) -> Path:
    """Download the policy of `ref` into `dst` and check its files against the recorded sha256.

    Returns:
        The checked model folder (its policy files in `DATA`).

    Raises:
        PolicyError: no sha256 is recorded for `ref`, or a file is changed, missing or extra.
    """
    if not ref.sha256:
        raise PolicyError(
            f"refusing policy {ref.uri}: the store records no {T.POLICY_SHA256} for it, so its files "
            "cannot be checked (it was logged by an older rlpipe or by something else); log it "
            "again by re-running its training job"
        )
    local = Path(tracker.client.fetch_artifacts(ref.source, str(dst)))
    verify_manifest(local, ref.sha256, ref.uri)
    return local


def load_policy(tracker: Tracker, ref: ModelRef) -> PolicyModel:
    """Download the policy of `ref`, check its files against the recorded sha256, then load it.

    Raises:
        PolicyError: no sha256 is recorded for `ref`, or a file is changed, missing or extra.
    """
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        return PolicyModel(fetch_policy(tracker, ref, Path(tmp)) / DATA)
