"""How MLflow loads a logged policy: the pyfunc `loader_module`, code of the installed rlpipe.

A policy's MLmodel names this module (`loader_module: rlpipe.policy.pyfunc`, `data:
data/policy`, no `code`), so `mlflow.pyfunc.load_model` and `mlflow models serve` import it from
the installed package and call `_load_pyfunc(<model>/data/policy)`; the artifact holds only data
(weights, JSON, the manifest) and no code of it is read.

Before anything of the policy is read, the model folder is checked against the sha256 its model
version records in the registry (`rlpipe.policy_sha256`), the trust anchor: whoever can write the
artifact store can change every file of it, but not the registry. Loaded as a registered version
(models:/<name>/<version>, @<alias> or /<stage>: MLflow notes the version it resolved beside the
files, in `registered_model_meta`), the files must be that version's. Loaded by path, runs:/ or
models:/<model id>, they must be those of some version of the registry (`MLFLOW_TRACKING_URI` /
`MLFLOW_REGISTRY_URI`) that records their manifest's sha256.

Policies logged before this module moved here name `rlpipe.tracking.served_policy`, which MLflow
still imports for them: that module hands `_load_pyfunc` on to this one (see its docstring).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.store.artifact.models_artifact_repo import REGISTERED_MODEL_META_FILE_NAME

from rlpipe.errors import PolicyError, RlpipeError
from rlpipe.files import sha256_of
from rlpipe.policy.manifest import MANIFEST, verify_manifest
from rlpipe.policy.model import DATA, PolicyModel
from rlpipe.tracking.store import bind
from rlpipe.tracking.tags import POLICY_SHA256


class ServedPolicy:
    """The policy as MLflow calls it: an input rlpipe refuses is an MLflow INVALID_PARAMETER_VALUE
    carrying rlpipe's message, which the scoring server returns as the response's `message`
    (HTTP 400) instead of a generic BAD_REQUEST with the reason in a stack trace."""

    def __init__(self, policy: PolicyModel) -> None:
        self.policy = policy

    def predict(self, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        try:
            return self.policy.predict(model_input)
        except RlpipeError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc

    def get_raw_model(self) -> PolicyModel:
        """The policy itself (`PyFuncModel.get_raw_model()`): its meta, statistics, network."""
        return self.policy


def _load_pyfunc(data_path: str) -> ServedPolicy:
    """Called by MLflow with `<model folder>/data/policy`; see the module docstring.

    Raises:
        PolicyError: the registry records no sha256 for these files, or a file is changed,
            missing or added (named with the model version).
    """
    data = Path(data_path)
    if not data.as_posix().endswith(f"/{DATA}"):
        raise PolicyError(f"refusing policy at {data_path}: its MLmodel's data is not {DATA}")
    root = data.parents[len(Path(DATA).parts) - 1]
    expected, where = recorded_sha256(root)
    verify_manifest(root, expected, where)
    return ServedPolicy(PolicyModel(root / DATA))


def recorded_sha256(root: Path) -> tuple[str, str]:
    """The manifest sha256 the registry records for the model in `root`, and the version's URI.

    Raises:
        PolicyError: the version is not in the registry or records no sha256, or (loaded
            without a version) no version records the sha256 of `root`'s manifest.
    """
    registry = mlflow.get_registry_uri()
    client = bind(registry)  # the process's retrying client of that store, as every tracker's
    named = _registered_version(root)
    if named is not None:
        where = f"models:/{named[0]}/{named[1]}"
        try:
            digest = client.get_model_version(*named).tags.get(POLICY_SHA256)
        except MlflowException as exc:
            problem = f"not in the registry at {registry} ({exc.message})"
            raise PolicyError(f"refusing policy {where}: {problem}") from exc
        if not digest:
            raise PolicyError(
                f"refusing policy {where}: the registry records no {POLICY_SHA256} for it, so its "
                "files cannot be checked; log it again by re-running its training job"
            )
        return digest, where
    manifest = root / MANIFEST
    digest = sha256_of(manifest) if manifest.is_file() else "none"
    found = client.search_model_versions(f"tags.`{POLICY_SHA256}` = '{digest}'", max_results=1)
    if not found:
        raise PolicyError(
            f"refusing policy {root}: no version of the registry at {registry} records the sha256 "
            f"of its {MANIFEST}, so its files cannot be trusted; load a registered version "
            "(models:/<name>@<alias>) with MLFLOW_TRACKING_URI set to the store that registered it"
        )
    return digest, f"models:/{found[0].name}/{found[0].version}"


def _registered_version(root: Path) -> tuple[str, str] | None:
    """(name, version) that MLflow resolved a models:/ URI to, or None when loaded otherwise."""
    meta = root / REGISTERED_MODEL_META_FILE_NAME
    if not meta.is_file():
        return None
    found = yaml.safe_load(meta.read_text())
    if not isinstance(found, dict):
        return None
    name, version = found.get("model_name"), found.get("model_version")
    return (str(name), str(version)) if name and version else None
