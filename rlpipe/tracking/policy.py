"""The policy as an MLflow pyfunc model: the SB3 zip plus the feature statistics and env layout.

Input: a DataFrame with the raw feature columns (see `rlpipe.data.features.raw_features`) and
the position-state columns of the env kind (`rlpipe.envs.layout`); the model normalises features
with the statistics fitted at training time and returns deterministic actions (0 hold, 1 maker
long, 2 maker short). Load it with `mlflow.pyfunc.load_model("models:/rlpipe-policy@champion")`,
or with `load_policy` from a given store.
"""

from __future__ import annotations

import json
import platform
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from rlpipe.data.features import FeatureStats, normalise
from rlpipe.envs.layout import position_vars
from rlpipe.errors import RegistryError
from rlpipe.tracking.tracker import LoggedModelRef, RunLog, Tracker

ARTIFACT = "policy"
"""Name of the logged model of a job run (`runs:/<run id>/policy`)."""


class PolicyModel(PythonModel):
    """pyfunc wrapper around an SB3 policy and its feature normalisation."""

    def load_context(self, context: Any) -> None:
        import stable_baselines3 as sb3

        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        self.meta = meta
        self.stats = FeatureStats.from_dict(meta["feature_stats"])
        self.model = getattr(sb3, meta["algo"]).load(context.artifacts["sb3"], device="cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        feats = normalise(model_input[list(self.stats.columns)].to_numpy(float), self.stats)
        pos = model_input[list(position_vars(self.meta["env_kind"]))].to_numpy(np.float32)
        obs = np.concatenate([feats, np.clip(pos, -3, 3)], axis=1)
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def observation_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        """A policy on ready-made observation rows, for the batched backtest."""
        return lambda obs: self.model.predict(obs, deterministic=True)[0]


@dataclass(frozen=True)
class ModelRef:
    """What a model URI points at: registered name and version, the run that logged it, its files."""

    uri: str
    name: str | None
    version: str | None
    run_id: str | None
    source: str
    """Where the model's files are stored (an artifact URI of the store)."""


def log_policy(run: RunLog, model_zip: Path, meta: dict[str, Any]) -> LoggedModelRef:
    """Save the policy as a pyfunc model and log it as the run's logged model `policy`."""
    meta_path = model_zip.parent / "policy_meta.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    cols: list[ColSpec | TensorSpec] = [ColSpec("double", c) for c in meta["feature_stats"]["columns"]]
    cols += [ColSpec("double", c) for c in position_vars(meta["env_kind"])]
    signature = ModelSignature(inputs=Schema(cols), outputs=Schema([ColSpec("long")]))
    folder = model_zip.parent / ARTIFACT
    with warnings.catch_warnings():  # cloudpickle notice and input-example hint: known, by design
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(
            str(folder),
            python_model=PolicyModel(),
            artifacts={"sb3": str(model_zip), "meta": str(meta_path)},
            signature=signature,
            pip_requirements=_requirements(),
        )
    return run.log_model_dir(folder, ARTIFACT)


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["rlpipe", "stable-baselines3", "torch", "gymnasium", "numpy", "pandas", "mlflow"]
    return [f"{p}=={version(p)}" for p in pkgs] + [f"# python=={platform.python_version()}"]


def resolve_model(tracker: Tracker, model_uri: str) -> ModelRef:
    """Resolve models:/name@alias, models:/name/N, models:/<model id> or runs:/<run id>/<name>."""
    client = tracker.client
    if model_uri.startswith("models:/m-"):
        model = client.get_logged_model(model_uri.removeprefix("models:/"))
        return ModelRef(model_uri, None, None, model.source_run_id, model.artifact_location)
    if model_uri.startswith("models:/"):
        ref = model_uri.removeprefix("models:/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, version = ref.partition("/")
            mv = client.get_model_version(name, version)
        source = client.get_model_version_download_uri(name, str(mv.version))
        return ModelRef(model_uri, name, str(mv.version), mv.run_id, source)
    if model_uri.startswith("runs:/"):
        run_id, _, name = model_uri.removeprefix("runs:/").partition("/")
        return ModelRef(model_uri, None, None, run_id, _logged_model_of(tracker, run_id, name or ARTIFACT))
    raise RegistryError(
        f"model={model_uri!r}: expected models:/<name>@<alias>, models:/<name>/<version> "
        "or runs:/<run id>/policy"
    )


def _logged_model_of(tracker: Tracker, run_id: str, name: str) -> str:
    experiment = tracker.client.get_run(run_id).info.experiment_id
    query = f"name = '{name}' AND source_run_id = '{run_id}'"
    found = tracker.client.search_logged_models(
        experiment_ids=[experiment], filter_string=query, max_results=1
    )
    if not found:
        raise RegistryError(f"run {run_id} logged no model named {name!r}")
    return str(found[0].artifact_location)


def load_policy(tracker: Tracker, ref: ModelRef) -> PolicyModel:
    """Download the policy of `ref` from the tracker's store and load it."""
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        local = download_artifacts(artifact_uri=ref.source, dst_path=tmp, tracking_uri=tracker.uri)
        model: PolicyModel = mlflow.pyfunc.load_model(local).unwrap_python_model()
    return model
