"""The policy as a model over raw bars: features computed inside, as in training.

Input: a DataFrame of raw bars, one row per bar in time order: the bar time (a `timestamp` column
or a DatetimeIndex; naive times are UTC), `open high low close volume`, optional `bid ask`, and
optionally the position held at each bar's close in natural units (see `rlpipe.policy.observations`).
Output: one row per bar, `action` (0 hold, 1 maker long, 2 maker short; -1 on a warm-up bar) and
`warmup` (True where the bar's features need more history than the given bars hold). A request
whose every bar is a warm-up bar is refused: it could only answer -1.

Its files are data only, in one folder (`DATA` inside the MLflow model): `weights.pt`,
`architecture.json` and `meta.json`. MLflow loads it through `rlpipe.policy.pyfunc`; its request
format as MLflow records it (signature, input example) is in `rlpipe.policy.logged`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.features import FeatureStats
from rlpipe.errors import PolicyError
from rlpipe.policy.network import ARCHITECTURE, WEIGHTS, load_policy_net
from rlpipe.policy.observations import ObservationSpec, observations
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
