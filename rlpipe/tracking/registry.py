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


def versions_of_sweep(name: str, sweep_id: str) -> list:
    """All versions of `name` registered by the jobs of `sweep_id`."""
    client = MlflowClient()
    return [
        v for v in client.search_model_versions(f"name='{name}'") if v.tags.get("rlpipe.sweep_id") == sweep_id
    ]


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points at, or None."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def apply_sweep(
    name: str, sweep_id: str, champion: str | None, challengers: list[str], why: dict[str, str]
) -> None:
    """Move the registry to the sweep's decision; a second call with the same decision changes nothing.

    The champion becomes Production + @champion and the Production version it replaces is
    archived (and remembered on the champion for rollback); challengers become Staging, the best
    of them @challenger; versions of this sweep still in Staging that are neither go back to None.
    """
    client = MlflowClient()
    if champion is not None:
        current = client.get_model_version(name, champion)
        if current.current_stage != "Production" or alias_version(name, "champion") != champion:
            previous = alias_version(name, "champion")
            for other in client.search_model_versions(f"name='{name}'"):
                if other.current_stage == "Production" and str(other.version) != champion:
                    transition(
                        name, str(other.version), "Archived", None, f"replaced by champion v{champion}"
                    )
            if previous and previous != champion:
                client.set_model_version_tag(name, champion, "rlpipe.previous_champion", previous)
            transition(name, champion, "Production", "champion", why[champion])
    for i, v in enumerate(challengers):
        alias = "challenger" if i == 0 else None
        mv = client.get_model_version(name, v)
        if mv.current_stage != "Staging" or (alias and alias_version(name, alias) != v):
            transition(name, v, "Staging", alias, why[v])
    keep = {champion, *challengers}
    for mv in versions_of_sweep(name, sweep_id):
        version: str = str(mv.version)
        if version not in keep and mv.current_stage == "Staging":
            transition(name, version, "None", None, why.get(version, "failed a sweep gate"))
            if alias_version(name, "challenger") == version:
                client.delete_registered_model_alias(name, "challenger")


def rollback(name: str) -> tuple[str, str]:
    """Restore the previous champion; returns (restored version, retired version)."""
    client = MlflowClient()
    current = alias_version(name, "champion")
    if current is None:
        raise mlflow.exceptions.MlflowException(f"registered model '{name}' has no @champion to roll back")
    previous = client.get_model_version(name, current).tags.get("rlpipe.previous_champion")
    if not previous:
        raise mlflow.exceptions.MlflowException(
            f"{name} v{current} is the first champion: there is no previous champion to restore"
        )
    transition(name, current, "Archived", None, f"rolled back to v{previous}")
    transition(name, previous, "Production", "champion", f"rollback: restored in place of v{current}")
    return previous, current


def history(name: str, versions: list[str]) -> list[tuple[str, str, str]]:
    """(when, version, what) of every recorded transition of `versions`, oldest first."""
    client = MlflowClient()
    rows = []
    for v in versions:
        for k, text in client.get_model_version(name, v).tags.items():
            if k.startswith("rlpipe.transition."):
                rows.append((k.removeprefix("rlpipe.transition."), v, text))
    return sorted(rows)


def resolve_model(model_uri: str) -> tuple[str | None, str | None, str | None]:
    """(name, version, source run id) of a models:/name@alias, models:/name/N or runs:/ URI."""
    client = MlflowClient()
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.partition("/")
            mv = client.get_model_version(name, version)
        return name, str(mv.version), mv.run_id
    if model_uri.startswith("runs:/"):
        return None, None, model_uri.removeprefix("runs:/").split("/", 1)[0]
    return None, None, None


def link_evaluation(name: str, version: str, run_id: str) -> None:
    """Record on the model version which run evaluated it last."""
    MlflowClient().set_model_version_tag(name, version, "rlpipe.last_evaluation_run", run_id)
