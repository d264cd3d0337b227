"""Model registry of one store: versions tagged with their verdicts, stage + alias moves with history.

Stages (None -> Staging -> Production -> Archived) are deprecated in MLflow but still work and
users ask for them; aliases carry the same meaning and survive the removal of stages. MLflow
keeps no alias history, so every transition is also written as a version tag (who, when, why).

Who moves what, with many writers:
- a job registers a version tagged with its run verdict and moves nothing;
- the sweep step alone moves stages and aliases, under the registry lock
  (`rlpipe.tracking.registry_lock`), and only versions of the runs it judged (it finds them by
  run id, `versions_of_runs`, never by number from a run's tag):
  the champion becomes Production `@champion` (the one it replaces is archived and remembered
  for rollback); the challengers become Staging `@challenger`, `@challenger-2`, ... in rank
  order (an alias names one version, so the rank is in the alias) and replace the previous
  sweep's challengers; a sweep that promotes nothing leaves every alias as it was;
- every version of a judged sweep carries its run verdict (`rlpipe.verdict`) and its sweep
  verdict (`rlpipe.sweep_verdict`);
- `@paper` names the newest champion that a sweep crowned with the deployment decision `paper`
  (`rlpipe.gates.rules.deployment`): a paper session follows `models:/<name>@paper`. It moves only
  when a sweep crowns such a champion (so never for a registry.promote=false sweep, which crowns
  nothing), never on a rollback; a champion decided `live` keeps its decision as the tag
  `rlpipe.deployment`, for people to act on;
- a health verdict (`rlpipe.jobs.health_job`) may roll the champion back (registry.on_degraded),
  with its reasons in the history.
"""

from __future__ import annotations

import getpass
import logging
import math
import warnings
from datetime import UTC, datetime

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from rlpipe.errors import RegistryError
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry_lock import RegistryLock, already_exists
from rlpipe.tracking.tracker import LoggedModelRef

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER, PAPER = "champion", "challenger", "paper"


def challenger_alias(rank: int) -> str:
    """The alias of the challenger of rank `rank` (1-based): challenger, challenger-2, ..."""
    return CHALLENGER if rank == 1 else f"{CHALLENGER}-{rank}"


class Registry:
    """The registered model `name` in the store of `client`."""

    def __init__(self, client: MlflowClient, name: str) -> None:
        self.client = client
        self.name = name

    def register(self, model: LoggedModelRef, run_id: str, tags: dict[str, str]) -> str:
        """Register a logged model as a new version (no stage, no alias); returns the version number."""
        self._ensure_model(self.name, "rlpipe trading policies (gated)")
        mv = self.client.create_model_version(
            self.name, model.artifact_location, run_id=run_id, tags=tags, model_id=model.model_id
        )
        return str(mv.version)

    def _ensure_model(self, name: str, description: str) -> None:
        try:
            self.client.create_registered_model(name, description=description)
        except MlflowException as exc:  # it exists (perhaps created meanwhile by a parallel job)
            if not already_exists(exc):
                raise

    def version(self, version: str) -> ModelVersion:
        return self.client.get_model_version(self.name, version)

    def run_of(self, version: str) -> str:
        """The run that registered `version`; a RegistryError names a version the model lacks."""
        try:
            run_id = self.version(version).run_id
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            raise RegistryError(
                f"registered model '{self.name}' has no version {version!r}: pass the number that "
                f"models:/{self.name}@champion (or @paper) resolves to"
            ) from exc
        if not run_id:
            raise RegistryError(
                f"{self.name} v{version} names no run: its recorded test slices cannot be read"
            )
        return str(run_id)

    def aliases(self) -> dict[str, str]:
        """Every alias of the registered model -> its version ({} when the model does not exist)."""
        try:
            return {a: str(v) for a, v in self.client.get_registered_model(self.name).aliases.items()}
        except MlflowException:
            return {}

    def alias_version(self, alias: str) -> str | None:
        """The version an alias points at, or None (no such model or alias)."""
        return self.aliases().get(alias)

    def challengers(self) -> list[str]:
        """The current challengers in rank order (@challenger, @challenger-2, ...)."""
        aliases = self.aliases()
        out: list[str] = []
        while challenger_alias(len(out) + 1) in aliases:
            out.append(aliases[challenger_alias(len(out) + 1)])
        return out

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        """Set version tags that differ from what is recorded."""
        current = self.version(version).tags
        for k, v in tags.items():
            if current.get(k) != v:
                self.client.set_model_version_tag(self.name, version, k, v)

    def transition(self, version: str, stage: str, alias: str | None, why: str) -> None:
        """Move a version to `stage` (and `alias`), recording who, when and why on the version."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client.transition_model_version_stage(
                self.name, version, stage, archive_existing_versions=False
            )
        if alias:
            self.client.set_registered_model_alias(self.name, alias, version)
        self._remember(version, f"{stage}{' @' + alias if alias else ''}", why)
        self.client.set_model_version_tag(self.name, version, T.STAGE_REASON, why)

    def point(self, alias: str, version: str, why: str) -> None:
        """Point `alias` at `version` without a stage change (unless it does already), with history."""
        if self.alias_version(alias) == version:
            return
        self.client.set_registered_model_alias(self.name, alias, version)
        self._remember(version, f"@{alias}", why)

    def _remember(self, version: str, move: str, why: str) -> None:
        """Write a move into the version's history (a tag per transition: when, who, why)."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%fZ")  # tag keys allow no '+'; sortable
        text = f"{move} by {getpass.getuser()}: {why}"
        self.client.set_model_version_tag(self.name, version, f"{T.TRANSITION_PREFIX}{stamp}", text)
        log.info("registry: %s v%s -> %s (%s)", self.name, version, move, why)

    def all_versions(self) -> list[ModelVersion]:
        """Every version of the registered model ([] when it does not exist yet)."""
        return list(self.client.search_model_versions(f"name='{self.name}'"))

    def run_metric(self, run_id: str, key: str) -> float:
        """A version's run's metric `key` (NaN when absent)."""
        return float(self.client.get_run(run_id).data.metrics.get(key, math.nan))

    def run_params(self, run_id: str) -> dict[str, str]:
        """A version's run's params (as MLflow stores them: text)."""
        return dict(self.client.get_run(run_id).data.params)

    def versions_of_runs(self, run_ids: set[str]) -> dict[str, str]:
        """run id -> its version in this registered model, for the runs of `run_ids` that have one
        (the first, if a run was registered twice). What a sweep step may move is found this way,
        by the version's own run id: a version number read from a run's tags may be another model's."""
        found: dict[str, str] = {}
        for mv in sorted(self.all_versions(), key=lambda v: int(v.version)):
            if mv.run_id in run_ids:
                found.setdefault(mv.run_id, str(mv.version))
        return found

    def versions_of_sweep(self, sweep_id: str) -> list[ModelVersion]:
        """All versions registered by the jobs of `sweep_id`."""
        found = self.client.search_model_versions(f"name='{self.name}'")
        return [v for v in found if v.tags.get(T.SWEEP_ID) == sweep_id]

    def apply_sweep(
        self,
        sweep_id: str,
        champion: str | None,
        challengers: list[str],
        why: dict[str, str],
        verdicts: dict[str, str] | None = None,
        paper: bool = False,
    ) -> None:
        """Move the registry to a sweep's decision; a second call with the same decision changes nothing.

        `verdicts` (version -> sweep verdict) are tagged on the versions. A sweep with neither a
        champion nor challengers moves no alias: the previous sweep's vetted versions stay.
        `paper`: the champion's deployment decision is paper, so it also gets `@paper`.
        """
        with RegistryLock(self.client, self.name):
            for v, verdict in (verdicts or {}).items():
                self.tag_version(v, {T.SWEEP_VERDICT: verdict})
            if champion is not None:
                self._crown(champion, why[champion])
                if paper:
                    self.point(PAPER, champion, f"{why[champion]}; deployment decision: paper")
            own = {str(mv.version): mv for mv in self.versions_of_sweep(sweep_id)}
            kept = [v for v in self.challengers() if v != champion and v not in own]
            ranked = challengers or kept
            self._rank_challengers(ranked, why, sweep_id, set(own))
            for version, mv in own.items():  # staged by an earlier step of this sweep, not any more
                if version not in {champion, *ranked} and mv.current_stage == "Staging":
                    self.transition(version, "None", None, why.get(version, "failed a sweep gate"))

    def _rank_challengers(self, ranked: list[str], why: dict[str, str], sweep_id: str, own: set[str]) -> None:
        """Give `ranked` the challenger aliases in order; previous challengers of other sweeps left
        out are archived (this sweep's own go back to None in `apply_sweep`)."""
        previous = self.challengers()
        for i, v in enumerate(ranked, start=1):
            if self.version(v).current_stage != "Staging" or self.alias_version(challenger_alias(i)) != v:
                self.transition(v, "Staging", challenger_alias(i), why.get(v, f"challenger of rank {i}"))
        for i in range(len(ranked) + 1, len(previous) + 1):
            self.client.delete_registered_model_alias(self.name, challenger_alias(i))
        champion = self.alias_version(CHAMPION)
        for v in previous:
            if v not in {*ranked, *own, champion} and self.version(v).current_stage == "Staging":
                self.transition(v, "Archived", None, f"challengers replaced by sweep {sweep_id}")

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

    def rollback(self, why: str = "", only: str | None = None) -> tuple[str, str]:
        """Restore the previous champion; returns (restored version, retired version).

        `why` goes into both versions' history; `only`: roll back only if @champion is still that
        version (checked under the lock: a sweep may have crowned another meanwhile).
        """
        with RegistryLock(self.client, self.name):
            current = self.alias_version(CHAMPION)
            if current is None:
                raise RegistryError(f"registered model '{self.name}' has no @champion to roll back")
            if only is not None and current != only:
                raise RegistryError(
                    f"{self.name} @champion is v{current} now, not v{only}: nothing rolled back"
                )
            previous = self.version(current).tags.get(T.PREVIOUS_CHAMPION)
            if not previous:
                raise RegistryError(
                    f"{self.name} v{current} is the first champion: there is no previous champion to restore"
                )
            because = f": {why}" if why else ""
            self.transition(current, "Archived", None, f"rolled back to v{previous}{because}")
            self.transition(
                previous, "Production", CHAMPION, f"rollback: restored in place of v{current}{because}"
            )
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
