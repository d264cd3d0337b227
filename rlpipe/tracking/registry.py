"""Model registry of one store: versions tagged with their verdicts, stage + alias moves with history.

Stages (None -> Staging -> Production -> Archived) are deprecated in MLflow but still work and
users ask for them; aliases (@challenger, @champion) carry the same meaning and survive the
removal of stages. MLflow keeps no alias history, so every transition is also written as a
version tag (who, when, why).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import warnings
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rlpipe.errors import RegistryError
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import LoggedModelRef

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"


class Registry:
    """The registered model `name` in the store of `client`."""

    def __init__(self, client: MlflowClient, name: str) -> None:
        self.client = client
        self.name = name

    def register(self, model: LoggedModelRef, run_id: str, tags: dict[str, str]) -> str:
        """Register a logged model as a new version; returns the version number."""
        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            with contextlib.suppress(MlflowException):  # created meanwhile by a parallel job
                self.client.create_registered_model(self.name, description="rlpipe trading policies (gated)")
        mv = self.client.create_model_version(
            self.name, model.artifact_location, run_id=run_id, tags=tags, model_id=model.model_id
        )
        return str(mv.version)

    def version(self, version: str) -> ModelVersion:
        return self.client.get_model_version(self.name, version)

    def transition(self, version: str, stage: str, alias: str | None, why: str) -> None:
        """Move a version to `stage` (and `alias`), recording who, when and why on the version."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client.transition_model_version_stage(
                self.name, version, stage, archive_existing_versions=False
            )
        if alias:
            self.client.set_registered_model_alias(self.name, alias, version)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")  # tag keys allow no '+'; sortable
        text = f"{stage}{' @' + alias if alias else ''} by {getpass.getuser()}: {why}"
        self.client.set_model_version_tag(self.name, version, f"{T.TRANSITION_PREFIX}{stamp}", text)
        self.client.set_model_version_tag(self.name, version, T.STAGE_REASON, why)
        log.info(
            "registry: %s v%s -> %s%s (%s)", self.name, version, stage, f" @{alias}" if alias else "", why
        )

    def versions_of_sweep(self, sweep_id: str) -> list[ModelVersion]:
        """All versions registered by the jobs of `sweep_id`."""
        found = self.client.search_model_versions(f"name='{self.name}'")
        return [v for v in found if v.tags.get(T.SWEEP_ID) == sweep_id]

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or None (no such model or alias)."""
        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def apply_sweep(
        self, sweep_id: str, champion: str | None, challengers: list[str], why: dict[str, str]
    ) -> None:
        """Move the registry to a sweep's decision; a second call with the same decision changes nothing.

        The champion becomes Production + @champion and the Production version it replaces is
        archived (and remembered on the champion for rollback); challengers become Staging, the
        best of them @challenger; versions of this sweep still in Staging that are neither go
        back to None.
        """
        if champion is not None:
            self._crown(champion, why[champion])
        for i, v in enumerate(challengers):
            alias = CHALLENGER if i == 0 else None
            if self.version(v).current_stage != "Staging" or (alias and self.alias_version(alias) != v):
                self.transition(v, "Staging", alias, why[v])
        keep = {champion, *challengers}
        for mv in self.versions_of_sweep(sweep_id):
            version = str(mv.version)
            if version not in keep and mv.current_stage == "Staging":
                self.transition(version, "None", None, why.get(version, "failed a sweep gate"))
                if self.alias_version(CHALLENGER) == version:
                    self.client.delete_registered_model_alias(self.name, CHALLENGER)

    def _crown(self, champion: str, why: str) -> None:
        previous = self.alias_version(CHAMPION)
        if self.version(champion).current_stage == "Production" and previous == champion:
            return
        for other in self.client.search_model_versions(f"name='{self.name}'"):
            if other.current_stage == "Production" and str(other.version) != champion:
                self.transition(str(other.version), "Archived", None, f"replaced by champion v{champion}")
        if previous and previous != champion:
            self.client.set_model_version_tag(self.name, champion, T.PREVIOUS_CHAMPION, previous)
        self.transition(champion, "Production", CHAMPION, why)

    def rollback(self) -> tuple[str, str]:
        """Restore the previous champion; returns (restored version, retired version)."""
        current = self.alias_version(CHAMPION)
        if current is None:
            raise RegistryError(f"registered model '{self.name}' has no @champion to roll back")
        previous = self.version(current).tags.get(T.PREVIOUS_CHAMPION)
        if not previous:
            raise RegistryError(
                f"{self.name} v{current} is the first champion: there is no previous champion to restore"
            )
        self.transition(current, "Archived", None, f"rolled back to v{previous}")
        self.transition(previous, "Production", CHAMPION, f"rollback: restored in place of v{current}")
        return previous, current

    def history(self, versions: list[str]) -> list[tuple[str, str, str]]:
        """(when, version, what) of every recorded transition of `versions`, oldest first."""
        rows = []
        for v in versions:
            for k, text in self.version(v).tags.items():
                if k.startswith(T.TRANSITION_PREFIX):
                    rows.append((k.removeprefix(T.TRANSITION_PREFIX), v, text))
        return sorted(rows)

    def link_evaluation(self, version: str, run_id: str) -> None:
        """Record on the version which run evaluated it last."""
        self.client.set_model_version_tag(self.name, version, T.LAST_EVALUATION_RUN, run_id)
