"""Type aliases shared across the package (one place, so signatures stay readable), and the constants
several floors share."""

from __future__ import annotations

from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
Float32Array: TypeAlias = npt.NDArray[np.float32]
IntArray: TypeAlias = npt.NDArray[np.int64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Metrics: TypeAlias = dict[str, float]
JsonDict: TypeAlias = dict[str, Any]

REGIMES: tuple[str, ...] = ("bull", "bear", "sideways")
ROLES: tuple[str, ...] = ("train", "validation", "test")
BASELINES: tuple[str, ...] = ("buy_and_hold", "flat", "random")
"""The passive policies every backtest runs beside the agent (`rlpipe.evaluation.backtest`)."""
OBSERVATION_CLIP = 3.0
"""Every observation value lies in [-OBSERVATION_CLIP, OBSERVATION_CLIP]: the normalised features
(`rlpipe.data.features.normalise`), the simulator's position variables (`rlpipe.envs.kernels`) and a
served policy's (`rlpipe.policy.observations`)."""
