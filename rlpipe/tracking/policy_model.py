"""The policy as a model over raw bars: features computed inside, as in training.

Input: a DataFrame of raw bars, one row per bar in time order: the bar time (a `timestamp` column
or a DatetimeIndex; naive times are UTC), `open high low close volume`, optional `bid ask`, and
optionally the position held at each bar's close in natural units (see `rlpipe.tracking.bars`).
Output: one row per bar, `action` (0 hold, 1 maker long, 2 maker short; -1 on a warm-up bar) and
`warmup` (True where the bar's features need more history than the given bars hold). A request
whose every bar is a warm-up bar is refused: it could only answer -1.

Its files are data only, in one folder (`DATA` inside the MLflow model): `weights.pt`,
`architecture.json` and `meta.json`. MLflow loads it through `rlpipe.tracking.served_policy`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec

from rlpipe.agents.policy_io import ARCHITECTURE, WEIGHTS, load_policy_net
from rlpipe.data.features import FeatureStats
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from rlpipe.errors import PolicyError
from rlpipe.tracking.bars import POSITION_INPUTS, TIMESTAMP, ObservationSpec, observations
from rlpipe.types import JsonDict

META = "meta.json"
FILES = (WEIGHTS, ARCHITECTURE, META)
"""The policy's files, all in one folder."""
DATA = "data/policy"
"""Where that folder sits inside the MLflow model (the pyfunc flavour's `data`)."""
WARMUP_ACTION = -1


class PolicyModel:
    """Raw bars (+ position) -> deterministic actions, warm-up bars marked."""

    def __init__(self, folder: Path) -> None:
        """Read the policy from `folder` (its `FILES`); nothing in it is unpickled or run.

        Raises:
            PolicyError: a file is missing, or the network and its meta disagree.
        """
        missing = [f for f in FILES if not (folder / f).is_file()]
        if missing:
            raise PolicyError(f"policy files {missing} missing in {folder}")
        self.meta: JsonDict = json.loads((folder / META).read_text())
        self.stats = FeatureStats.from_dict(self.meta["feature_stats"])
        self.spec = ObservationSpec.from_meta(self.meta)
        self.net = load_policy_net(folder)
        if self.net.obs_dim != self.spec.obs_dim:
            raise PolicyError(
                f"policy network takes {self.net.obs_dim} inputs but its meta describes {self.spec.obs_dim}"
            )

    def predict(self, model_input: pd.DataFrame) -> pd.DataFrame:
        """Actions for every bar of `model_input` (see the module docstring).

        Raises:
            DataError: the bars break the market-data contract.
            PolicyError: the bars are too few to act on, spaced unlike the training bars, or a
                position value is invalid.
        """
        warm = int(self.meta["warmup_bars"])
        if len(model_input) <= warm:
            raise PolicyError(
                f"policy input: {len(model_input)} bars, but the first {warm} bars of a request only "
                f"warm up the features (they look back {warm} bars); send at least {warm + 1} bars, "
                "the last ones being those to act on"
            )
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
