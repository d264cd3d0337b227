"""Raw bars and an optional current position (natural units) -> the policy's observation rows.

What a served policy does to its input, exactly as training and the backtest do it:
features from `rlpipe.data.features.raw_features` over the given bars, normalised with the
training statistics; the position variables of `rlpipe.envs.layout` scaled as the simulator's
observation kernel (`rlpipe.envs.kernels.observe_batch`) scales them, clipped to +-`OBSERVATION_CLIP`.

Position columns (all optional, one value per bar, the position held at that bar's close):
    side                 -1 short, 0 flat (default), 1 long
    open_stake           management only: open stake as a fraction of equity (default: one fill,
                         the training `stake`, while in a position)
    unrealised           open PnL as a fraction of the position's cost, 0.01 = +1% (default 0)
    hours_since_open     hours since the last fill that opened stake (default 0)
    avg_open_hours       management only: mean age of the open stakes in hours (default:
                         hours_since_open, exact for a single stake)
    hours_since_close    hours flat since the last close (default 0)
Durations count bars x the bar length, as the simulator counts them (hours the market was closed
do not count). In-position values are ignored while flat and hours_since_close while in a
position, as in the simulator. A bar whose features need more history than the given bars is a
warm-up bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.data.features import FeatureStats, normalise, raw_features
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, validate_market
from rlpipe.envs.layout import layout_of, position_vars
from rlpipe.errors import PolicyError
from rlpipe.types import OBSERVATION_CLIP, BoolArray, Float32Array, FloatArray, JsonDict

TIMESTAMP = "timestamp"
POSITION_INPUTS: dict[str, tuple[str, ...]] = {
    "baseline": ("side", "unrealised", "hours_since_open", "hours_since_close"),
    "management": (
        "side",
        "open_stake",
        "unrealised",
        "hours_since_open",
        "avg_open_hours",
        "hours_since_close",
    ),
}
"""The optional position columns a policy of each layout reads (see the module docstring)."""


@dataclass(frozen=True)
class ObservationSpec:
    """What turns bars into observations for one policy: its statistics, layout and scales."""

    stats: FeatureStats
    layout: str
    """baseline or management (`rlpipe.envs.layout`)."""
    stake: float
    max_stake: float
    unrealised_scale: float
    hours_scale: float
    bar_hours: float
    """The bar spacing the policy was trained on, in hours."""

    @classmethod
    def from_meta(cls, meta: JsonDict) -> ObservationSpec:
        """From a policy's meta (feature_stats, env_kind, sim, bar_hours)."""
        sim = meta["sim"]
        return cls(
            FeatureStats.from_dict(meta["feature_stats"]),
            layout_of(meta["env_kind"]),
            float(sim["stake"]),
            float(sim["max_stake"]),
            float(sim["unrealised_scale"]),
            float(sim["hours_scale"]),
            float(meta["bar_hours"]),
        )

    @property
    def obs_dim(self) -> int:
        return len(self.stats.columns) + len(position_vars(self.layout))


def observations(model_input: pd.DataFrame, spec: ObservationSpec) -> tuple[Float32Array, BoolArray]:
    """Observation rows (float32, one per bar, in input order) and the warm-up mask.

    Raises:
        DataError: the bars break the market-data contract (names the column and timestamp).
        PolicyError: the bars' spacing is not the training one, or a position value is invalid.
    """
    bars = _bars(model_input)
    step = pd.Series(bars.index).diff().median() / pd.Timedelta(hours=1)
    if not np.isclose(step, spec.bar_hours, rtol=0.01):
        raise PolicyError(
            f"policy input: bars are {step:g} h apart (median) but the policy was trained on "
            f"{spec.bar_hours:g} h bars; resample the bars to {spec.bar_hours:g} h"
        )
    raw = raw_features(bars)
    warmup = ~np.isfinite(raw.to_numpy(float)).all(axis=1)
    feats = normalise(raw[list(spec.stats.columns)], spec.stats)
    pos = position_rows(model_input, bars.index, spec)
    return np.concatenate([feats, pos], axis=1), warmup


def position_rows(model_input: pd.DataFrame, index: pd.Index, spec: ObservationSpec) -> Float32Array:
    """The position part of the observations, in the layout's order, from natural-unit columns."""
    n = len(index)
    col = {c: v for c in POSITION_INPUTS[spec.layout] if (v := _column(model_input, c, index)) is not None}
    side = col.get("side", np.zeros(n))
    wrong = np.flatnonzero(~np.isin(side, (-1.0, 0.0, 1.0)))
    if wrong.size:
        i = wrong[0]
        raise PolicyError(f"policy input: column 'side' must be -1, 0 or 1, got {side[i]:g} at {index[i]}")
    held = side != 0
    since_open = col.get("hours_since_open", np.zeros(n))
    open_stake = col.get("open_stake", np.full(n, spec.stake))
    avg_open = col.get("avg_open_hours", since_open)
    since_close = col.get("hours_since_close", np.zeros(n))
    vals: dict[str, FloatArray] = {
        "long": (side > 0).astype(float),
        "short": (side < 0).astype(float),
        "size": np.where(held, open_stake / spec.max_stake, 0.0),
        "unrealised": np.where(held, col.get("unrealised", np.zeros(n)) * spec.unrealised_scale, 0.0),
        "avg_open_hours": np.where(held, avg_open / spec.hours_scale, 0.0),
        "last_open_hours": np.where(held, since_open / spec.hours_scale, 0.0),
        "hours_in_position": np.where(held, since_open / spec.hours_scale, 0.0),
        "hours_since_close": np.where(held, 0.0, since_close / spec.hours_scale),
    }
    pos = np.column_stack([vals[v] for v in position_vars(spec.layout)])
    return np.clip(pos, -OBSERVATION_CLIP, OBSERVATION_CLIP).astype(np.float32)


def warmup_bars(n: int = 512) -> int:
    """How many leading bars have incomplete features (the longest look-back of `raw_features`)."""
    t = np.arange(n, dtype=float)
    close = 100.0 * np.exp(0.01 * np.sin(t))
    df = pd.DataFrame({"open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                       "volume": 1.0 + t})  # fmt: skip
    complete = np.isfinite(raw_features(df).to_numpy(float)).all(axis=1)
    return int(np.argmax(complete)) if complete.any() else n


def _bars(model_input: pd.DataFrame) -> pd.DataFrame:
    """The OHLCV(+bid/ask) frame on a UTC DatetimeIndex (from the timestamp column or the index)."""
    if TIMESTAMP in model_input.columns:
        stamps = pd.to_datetime(model_input[TIMESTAMP], utc=True, errors="coerce")
        if stamps.isna().any():
            bad = model_input[TIMESTAMP][stamps.isna()].iloc[0]
            raise PolicyError(f"policy input: column 'timestamp' has an unreadable value {bad!r}")
        index = pd.DatetimeIndex(stamps)
    elif isinstance(model_input.index, pd.DatetimeIndex):
        index = model_input.index
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    else:
        raise PolicyError("policy input: give the bar times as a 'timestamp' column or a DatetimeIndex")
    cols = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in model_input.columns]
    bars = pd.DataFrame({c: model_input[c].to_numpy() for c in cols}, index=index.rename(TIMESTAMP))
    validate_market(bars, "policy input")
    return bars.astype(float)


def _column(model_input: pd.DataFrame, name: str, index: pd.Index) -> FloatArray | None:
    if name not in model_input.columns:
        return None
    values = pd.to_numeric(model_input[name], errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise PolicyError(f"policy input: column {name!r} is not a finite number at {index[bad][0]}")
    if name != "side" and name != "unrealised" and (values < 0).any():
        raise PolicyError(f"policy input: column {name!r} is negative at {index[values < 0][0]}")
    return values
