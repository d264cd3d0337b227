"""Past-only features and their normalisation, fitted on training slices only.

Every feature at bar t is computed from bars <= t (rolling windows and backward differences),
so perturbing the future cannot change the past; a test proves it. The fitted statistics are a
small value object that is stored with the policy, so evaluation and inference normalise exactly
as training did.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from rlpipe.types import BoolArray, Float32Array, FloatArray, JsonDict

CLIP = 3.0
RETURN_HORIZONS: tuple[int, ...] = (1, 4, 12, 24, 48)


def raw_features(df: pd.DataFrame) -> pd.DataFrame:
    """Raw (unnormalised) feature columns, each computed from bars <= t only."""
    log_close = np.log(df["close"])
    ret1 = log_close.diff()
    out = {f"ret_{h}": log_close.diff(h) for h in RETURN_HORIZONS}
    out["vol_24"] = ret1.rolling(24).std()
    out["range_1"] = np.log(df["high"] / df["low"])
    out["close_vs_ma_48"] = log_close - np.log(df["close"].rolling(48).mean())
    log_vol = np.log1p(df["volume"])
    out["volume_z_48"] = log_vol - log_vol.rolling(48).mean()
    return pd.DataFrame(out, index=df.index)


@dataclass(frozen=True)
class FeatureStats:
    """Normalisation statistics fitted on training bars; they travel with the model."""

    columns: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def to_dict(self) -> JsonDict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: JsonDict) -> FeatureStats:
        return cls(tuple(d["columns"]), tuple(map(float, d["mean"])), tuple(map(float, d["std"])))


def fit_stats(raw: pd.DataFrame, train_mask: BoolArray) -> FeatureStats:
    """Fit mean and sigma per column on the rows of `train_mask` only (NaN-aware)."""
    values = raw.to_numpy(dtype=float)[train_mask]
    values = np.where(np.isfinite(values), values, np.nan)
    mean = np.nanmean(values, axis=0)
    std = np.nanstd(values, axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return FeatureStats(tuple(raw.columns), tuple(mean.tolist()), tuple(std.tolist()))


def normalise(raw: pd.DataFrame | FloatArray, stats: FeatureStats) -> Float32Array:
    """(x - mean) / sigma, clipped to [-3, 3], NaN/inf -> 0, as float32."""
    if isinstance(raw, pd.DataFrame):
        if tuple(raw.columns) != stats.columns:
            raise ValueError(f"feature columns {list(raw.columns)} differ from fitted {list(stats.columns)}")
        raw = raw.to_numpy(dtype=float)
    z = (np.asarray(raw, dtype=float) - np.asarray(stats.mean)) / np.asarray(stats.std)
    z = np.where(np.isfinite(z), z, 0.0)
    return np.clip(z, -CLIP, CLIP).astype(np.float32)
