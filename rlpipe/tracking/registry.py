"""Model registry: versions tagged with their verdict, stage + alias transitions with history.

Stages (None -> Staging -> Production -> Archived) are deprecated in MLflow but still work and
users ask for them; aliases (@challenger, @champion) carry the same meaning and survive the
removal of stages. MLflow keeps no alias history, so every transition is also written as
version tags (who, when, why).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import warnings
from datetime import UTC, datetime

import mlflow
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)


def register(model_uri: str, name: str, run_id: str, tags: dict[str, str]) -> str:
    """Register `model_uri` as a new version of `name`; returns the version number."""
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # created meanwhile by a parallel job
            client.create_registered_model(name, description="rlpipe trading policies (gated)")
    mv = client.create_model_version(name, model_uri, run_id=run_id, tags=tags)
    return str(mv.version)


def transition(name: str, version: str, stage: str, alias: str | None, why: str) -> None:
    """Move a version to `stage` (and `alias`), recording who, when and why on the version."""
    client = MlflowClient()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client.transition_model_version_stage(name, version, stage, archive_existing_versions=False)
    if alias:
        client.set_registered_model_alias(name, alias, version)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")  # tag keys allow no '+'; sortable
    who = getpass.getuser()
    client.set_model_version_tag(
        name,
        version,
        f"rlpipe.transition.{stamp}",
        f"{stage}{' @' + alias if alias else ''} by {who}: {why}",
    )
    client.set_model_version_tag(name, version, "rlpipe.stage_reason", why)
    log.info("registry: %s v%s -> %s%s (%s)", name, version, stage, f" @{alias}" if alias else "", why)
