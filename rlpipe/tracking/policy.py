"""Log, resolve and load the policy of a job run: a pyfunc model over raw bars, integrity-checked.

`log_policy` stores the network as `weights.pt` + `architecture.json` (`rlpipe.agents.policy_io`)
and the feature statistics, layout and scales as `meta.json`, in the model's `data/policy`, and
logs them as an MLflow model whose loader is the installed `rlpipe.tracking.served_policy`
(`loader_module`: the artifact holds no code and nothing pickled), with its input signature, an
input example and installable requirements; a sha256 manifest over the model's files is written
into it and its digest returned, to be recorded in the store. `fetch_policy` downloads a policy
and checks every file against that record before anything reads it; `load_policy` then builds it.

Users with bars (see `rlpipe.tracking.policy_model` for the columns):

    model = mlflow.pyfunc.load_model("models:/rlpipe-policy@champion")
    model.predict(bars)  # -> action (0 hold, 1 long, 2 short, -1 warm-up), warmup
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    BAD_REQUEST,
    INVALID_PARAMETER_VALUE,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from packaging.version import Version
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.agents.policy_io import save_policy_net
from rlpipe.errors import PolicyError, RegistryError
from rlpipe.tracking import tags as T
from rlpipe.tracking.bars import warmup_bars
from rlpipe.tracking.integrity import verify_manifest, write_manifest
from rlpipe.tracking.policy_model import DATA, META, PolicyModel, input_example, signature
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import LoggedModelRef, RunLog, Tracker

_NOT_THERE = {ErrorCode.Name(c) for c in (RESOURCE_DOES_NOT_EXIST, INVALID_PARAMETER_VALUE, BAD_REQUEST)}
"""MLflow's answers to a model, version, alias or run that does not exist (or a malformed one)."""
ARTIFACT = "policy"
"""Name of the logged model of a job run (`runs:/<run id>/policy`)."""
LOADER = "rlpipe.tracking.served_policy"
"""The module MLflow loads a policy with (`_load_pyfunc`), from the installed rlpipe."""
REQUIREMENTS = ("rlpipe", "stable-baselines3", "torch", "gymnasium", "numpy", "pandas", "mlflow")
EXAMPLE_BARS = 8
"""Bars past the warm-up in the logged input example."""
LISTED = 10
"""Registered model names named at most in the error of a model that is not there."""


@dataclass(frozen=True)
class LoggedPolicy:
    """A logged policy model and the sha256 of its manifest (to record on its run and version)."""

    model: LoggedModelRef
    sha256: str


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


def log_policy(run: RunLog, agent: BaseAlgorithm, meta: dict[str, Any], bars: pd.DataFrame) -> LoggedPolicy:
    """Save `agent`'s policy as a pyfunc model over raw bars and log it as the run's model `policy`.

    Args:
        run: the job's run.
        agent: the trained algorithm (PPO, A2C or DQN with its default policy).
        meta: feature_stats, env_kind, sim (the env config), bar_hours, and what re-evaluation
            needs (seed, data_digest, embargo, train_windows...).
        bars: market bars the input example is cut from (its first warm-up + 8 bars).
    """
    meta = {**meta, "warmup_bars": warmup_bars()}
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        files = Path(tmp) / "files" / Path(DATA).name  # copied by MLflow into the model as DATA
        save_policy_net(agent, files)
        (files / META).write_text(json.dumps(meta, indent=2))
        folder = Path(tmp) / ARTIFACT
        with warnings.catch_warnings():  # MLflow's hints (type hints, requirements): known, by design
            warnings.simplefilter("ignore")
            mlflow.pyfunc.save_model(
                str(folder),
                loader_module=LOADER,
                data_path=str(files),
                signature=signature(meta),
                input_example=input_example(bars, meta["warmup_bars"] + EXAMPLE_BARS),
                pip_requirements=_requirements(),
            )
        digest = write_manifest(folder)
        model = run.log_model_dir(folder, ARTIFACT)
    run.client.set_logged_model_tags(model.model_id, {T.POLICY_SHA256: digest})
    return LoggedPolicy(model, digest)


def _requirements() -> list[str]:
    """The installed versions, pinned without their local label (torch 2.13.0+cpu -> torch==2.13.0,
    which any index holding 2.13.0 satisfies, the CPU or a CUDA build); rlpipe is not on PyPI: it is
    installed from the project before these (README, "Using a trained policy")."""
    from importlib.metadata import version

    return [f"{p}=={Version(version(p)).public}" for p in REQUIREMENTS]


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
