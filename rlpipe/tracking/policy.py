"""The policy as an MLflow pyfunc model: the SB3 zip plus the feature statistics and env layout.

Input: a DataFrame with the raw feature columns (see `rlpipe.data.features.raw_features`) and
the position-state columns of the env kind; the model normalises features with the statistics
fitted at training time and returns deterministic actions (0 hold, 1 maker long, 2 maker short).
Load it with `mlflow.pyfunc.load_model("models:/rlpipe-policy@champion")`.
"""

from __future__ import annotations

import json
import platform
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from rlpipe.data.features import FeatureStats, normalise

POSITION_COLUMNS = {
    "baseline": ["long", "short", "unrealised", "hours_in_position", "hours_since_close"],
    "management": [
        "long",
        "short",
        "size",
        "unrealised",
        "avg_open_hours",
        "last_open_hours",
        "hours_since_close",
    ],
}


class PolicyModel(PythonModel):
    """pyfunc wrapper around an SB3 policy and its feature normalisation."""

    def load_context(self, context: Any) -> None:
        from stable_baselines3.common.base_class import BaseAlgorithm

        meta = json.loads(Path(context.artifacts["meta"]).read_text())
        self.meta = meta
        self.stats = FeatureStats.from_dict(meta["feature_stats"])
        algo_cls: type[BaseAlgorithm] = _algo_class(meta["algo"])
        self.model = algo_cls.load(context.artifacts["sb3"], device="cpu")

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        feats = normalise(model_input[list(self.stats.columns)].to_numpy(float), self.stats)
        pos = model_input[POSITION_COLUMNS[self.meta["env_kind"]]].to_numpy(np.float32)
        obs = np.concatenate([feats, np.clip(pos, -3, 3)], axis=1)
        actions, _ = self.model.predict(obs, deterministic=True)
        return np.asarray(actions, dtype=np.int64)

    def observation_policy(self):
        """A policy on ready-made observation rows, for the batched backtest."""
        return lambda obs: self.model.predict(obs, deterministic=True)[0]


def _algo_class(name: str):
    import stable_baselines3 as sb3

    return getattr(sb3, name)


def log_policy(model_zip: Path, meta: dict[str, Any], name: str = "policy") -> str:
    """Log the policy to the active run; returns the model URI."""
    meta_path = model_zip.parent / "policy_meta.json"
    meta_path.write_text(json.dumps(meta, indent=2))
    cols: list[ColSpec | TensorSpec] = [ColSpec("double", c) for c in meta["feature_stats"]["columns"]]
    cols += [ColSpec("double", c) for c in POSITION_COLUMNS[meta["env_kind"]]]
    signature = ModelSignature(inputs=Schema(cols), outputs=Schema([ColSpec("long")]))
    with warnings.catch_warnings():  # cloudpickle notice and input-example hint: known, by design
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=PolicyModel(),
            artifacts={"sb3": str(model_zip), "meta": str(meta_path)},
            signature=signature,
            pip_requirements=_requirements(),
        )
    return str(info.model_uri)


def _requirements() -> list[str]:
    from importlib.metadata import version

    pkgs = ["rlpipe", "stable-baselines3", "torch", "gymnasium", "numpy", "pandas", "mlflow"]
    return [f"{p}=={version(p)}" for p in pkgs] + [f"# python=={platform.python_version()}"]


def load_policy(model_uri: str) -> PolicyModel:
    """Load a logged or registered policy and return the underlying `PolicyModel`."""
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
