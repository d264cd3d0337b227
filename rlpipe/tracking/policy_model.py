"""The policy as an MLflow pyfunc model over raw bars: features computed inside, as in training.

Input: a DataFrame of raw bars, one row per bar in time order: the bar time (a `timestamp` column
or a DatetimeIndex; naive times are UTC), `open high low close volume`, optional `bid ask`, and
optionally the position held at each bar's close in natural units (see `rlpipe.tracking.bars`).
Output: one row per bar, `action` (0 hold, 1 maker long, 2 maker short; -1 on a warm-up bar) and
`warmup` (True where the bar's features need more history than the given bars hold).

The model is logged from code (`served_policy.py`), its artifacts are `weights.pt`,
`architecture.json` and `meta.json`; nothing of it is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from rlpipe.agents.policy_io import ARCHITECTURE, WEIGHTS, load_policy_net
from rlpipe.data.features import FeatureStats
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from rlpipe.errors import PolicyError
from rlpipe.tracking.bars import POSITION_INPUTS, TIMESTAMP, ObservationSpec, observations
from rlpipe.tracking.integrity import verify_manifest
from rlpipe.types import JsonDict

META = "meta.json"
ARTIFACTS = {"weights": WEIGHTS, "architecture": ARCHITECTURE, "meta": META}
"""The pyfunc artifacts (name -> file name); MLflow stores them under `artifacts/`."""
WARMUP_ACTION = -1


class PolicyModel(PythonModel):
    """pyfunc policy: raw bars (+ position) -> deterministic actions, warm-up bars marked."""

    def load_context(self, context: Any) -> None:
        """Loaded by MLflow (`mlflow.pyfunc.load_model`, `mlflow models serve`): the files are checked
        against the model's manifest first (`rlpipe.tracking.policy.load_policy` also checks the
        manifest against the sha256 recorded in the store)."""
        artifacts = {name: Path(path) for name, path in context.artifacts.items()}
        if "weights" in artifacts:
            root = artifacts["weights"].parent.parent
            verify_manifest(root, None, str(root))
        self._load(artifacts)

    @classmethod
    def from_files(cls, artifacts: Mapping[str, Path]) -> PolicyModel:
        """The policy from its artifact files (name -> path, the names of `ARTIFACTS`)."""
        model = cls()
        model._load(artifacts)
        return model

    def _load(self, artifacts: Mapping[str, Path]) -> None:
        missing = sorted(set(ARTIFACTS) - set(artifacts))
        if missing:
            raise PolicyError(f"policy artifacts {missing} missing")
        folder = artifacts["weights"].parent
        if artifacts["architecture"] != folder / ARCHITECTURE or artifacts["weights"].name != WEIGHTS:
            raise PolicyError(f"policy artifacts must be {WEIGHTS} and {ARCHITECTURE} in one folder")
        self.meta: JsonDict = json.loads(artifacts["meta"].read_text())
        self.stats = FeatureStats.from_dict(self.meta["feature_stats"])
        self.spec = ObservationSpec.from_meta(self.meta)
        self.net = load_policy_net(folder)
        if self.net.obs_dim != self.spec.obs_dim:
            raise PolicyError(
                f"policy network takes {self.net.obs_dim} inputs but its meta describes {self.spec.obs_dim}"
            )

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        obs, warmup = observations(pd.DataFrame(model_input), self.spec)
        actions = np.where(warmup, WARMUP_ACTION, self.net.act(obs)).astype(np.int64)
        return pd.DataFrame({"action": actions, "warmup": warmup}, index=model_input.index)

    def observation_policy(self) -> Callable[[np.ndarray], np.ndarray]:
        """A policy on ready-made observation rows, for the batched backtest."""
        return self.net.act


def signature(meta: JsonDict) -> ModelSignature:
    """Input: timestamp, OHLCV, optional bid/ask and position columns; output: action, warmup."""
    layout = ObservationSpec.from_meta(meta).layout
    inputs: list[ColSpec | TensorSpec] = [ColSpec("string", TIMESTAMP, required=False)]
    inputs += [ColSpec("double", c) for c in REQUIRED_COLUMNS]
    inputs += [ColSpec("double", c, required=False) for c in (*OPTIONAL_COLUMNS, *POSITION_INPUTS[layout])]
    outputs: list[ColSpec | TensorSpec] = [ColSpec("long", "action"), ColSpec("boolean", "warmup")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(bars: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first `n` bars as a request body: a timestamp column (ISO text) and the bar columns."""
    head = bars.iloc[:n]
    cols = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in head.columns]
    stamps = pd.DatetimeIndex(head.index).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame({TIMESTAMP: stamps, **{c: head[c].to_numpy(float) for c in cols}})
