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

from rlpipe.types import OBSERVATION_CLIP, BoolArray, Float32Array, FloatArray, JsonDict

RETURN_HORIZONS: tuple[int, ...] = (1, 4, 12, 24, 48)


COLUMNS: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS), "vol_24", "range_1", "close_vs_ma_48", "volume_z_48",
)  # fmt: skip
HISTORY = 49
"""Bars a feature row reads: bar t and the 48 before it (`ret_48`, the 48-bar means)."""


def raw_features(df: pd.DataFrame) -> pd.DataFrame:
    """Raw (unnormalised) feature columns, each computed from bars <= t only."""
    rows = feature_rows(*(df[c].to_numpy(np.float64) for c in ("close", "high", "low", "volume")))
    return pd.DataFrame(rows, index=df.index, columns=list(COLUMNS))


def feature_rows(close: FloatArray, high: FloatArray, low: FloatArray, volume: FloatArray) -> FloatArray:
    """`raw_features` on arrays, shape (bars, len(COLUMNS)); NaN where the history is too short.

    Every value at bar t is computed from bars t-48..t alone, with the same operations in the same
    order wherever t sits in the arrays, so the row of bar t from the last `HISTORY` bars is
    bit-identical to the row from the whole frame (what `FeatureStream` relies on).
    """
    log_close = np.log(close)
    ret1 = _diff(log_close, 1)
    cols = [_diff(log_close, h) for h in RETURN_HORIZONS]
    cols.append(_rolling_std(ret1, 24))
    cols.append(np.log(high / low))
    cols.append(log_close - np.log(_rolling_mean(close, 48)))
    log_vol = np.log1p(volume)
    cols.append(log_vol - _rolling_mean(log_vol, 48))
    return np.column_stack(cols)


def _diff(x: FloatArray, h: int) -> FloatArray:
    out = np.full(len(x), np.nan)
    out[h:] = x[h:] - x[:-h]
    return out


def _rolling_mean(x: FloatArray, n: int) -> FloatArray:
    """Mean of x[t-n+1..t], summed left to right (one fixed order: no running sum carried over)."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        m = len(x) - n + 1
        total = x[0:m].copy()
        for i in range(1, n):
            total += x[i : i + m]
        out[n - 1 :] = total / n
    return out


def _rolling_std(x: FloatArray, n: int) -> FloatArray:
    """Sample standard deviation (ddof 1) of x[t-n+1..t], in the same fixed order."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        m = len(x) - n + 1
        mean = _rolling_mean(x, n)[n - 1 :]
        sq = (x[0:m] - mean) ** 2
        for i in range(1, n):
            sq += (x[i : i + m] - mean) ** 2
        out[n - 1 :] = np.sqrt(sq / (n - 1))
    return out


def _last_row(bars: FloatArray) -> FloatArray:
    """`feature_rows(...)[-1]` of `HISTORY` complete bars (close, high, low, volume columns), by the
    very operations `feature_rows` applies to that row, in the same order, on scalars: a tenth of
    its cost on one row (a test holds them bit-identical on every bar)."""
    close, high, low, volume = bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3]
    log_close = np.log(close)
    ret1 = log_close[1:] - log_close[:-1]
    row = [log_close[-1] - log_close[-1 - h] for h in RETURN_HORIZONS]
    tail = ret1[-24:]
    mean = _sum(tail) / 24
    d = tail - mean  # elementwise, as the batch code subtracts
    sq = d[0] * d[0]  # x * x: what numpy's array ** 2 computes (a scalar ** 2 may call pow())
    for v in d[1:]:
        sq += v * v
    row.append(np.sqrt(sq / 23))
    row.append(np.log(high[-1] / low[-1]))
    row.append(log_close[-1] - np.log(_sum(close[-48:]) / 48))
    log_vol = np.log1p(volume[-48:])
    row.append(log_vol[-1] - _sum(log_vol) / 48)
    return np.array(row, np.float64)


def _sum(x: FloatArray) -> np.float64:
    total = x[0]
    for v in x[1:]:
        total += v
    return total


class FeatureStream:
    """Feature rows bar by bar: `push` a bar, get its raw row, equal to `raw_features` of every bar
    so far at that bar (a paper or live session sees bar t once, and never a later one)."""

    def __init__(self) -> None:
        self._bars = np.full((HISTORY, 4), np.nan)  # close, high, low, volume of the last bars
        self.count = 0

    def push(self, close: float, high: float, low: float, volume: float) -> FloatArray:
        self._bars = np.roll(self._bars, -1, axis=0)
        self._bars[-1] = (close, high, low, volume)
        self.count += 1
        if self.count < HISTORY:  # warm-up: the rows' NaNs come from the batch code itself
            have = self._bars[-self.count :]
            return feature_rows(*(np.ascontiguousarray(have[:, j]) for j in range(4)))[-1]
        return _last_row(self._bars)

    def state(self) -> dict[str, object]:
        return {"bars": self._bars.tolist(), "count": self.count}

    def restore(self, state: dict[str, object]) -> None:
        self._bars = np.asarray(state["bars"], np.float64).reshape(HISTORY, 4)
        self.count = int(state["count"])  # type: ignore[call-overload]


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
    """(x - mean) / sigma, clipped to +-`OBSERVATION_CLIP` (3), NaN/inf -> 0, as float32."""
    if isinstance(raw, pd.DataFrame):
        if tuple(raw.columns) != stats.columns:
            raise ValueError(f"feature columns {list(raw.columns)} differ from fitted {list(stats.columns)}")
        raw = raw.to_numpy(dtype=float)
    z = (np.asarray(raw, dtype=float) - np.asarray(stats.mean)) / np.asarray(stats.std)
    z = np.where(np.isfinite(z), z, 0.0)
    return np.clip(z, -OBSERVATION_CLIP, OBSERVATION_CLIP).astype(np.float32)
