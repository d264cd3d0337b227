"""Market arrays the simulator reads: prices as contiguous float64 arrays, features as float32."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.data.calendar import infer_calendar
from rlpipe.types import Float32Array, FloatArray


@dataclass(frozen=True)
class Market:
    """Prices and normalised features of one market frame, indexed by bar position."""

    high: FloatArray
    low: FloatArray
    close: FloatArray
    bid: FloatArray
    ask: FloatArray
    features: Float32Array
    hours_per_bar: float
    bars_per_year: float

    @property
    def n_bars(self) -> int:
        return len(self.close)

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])


def quotes(df: pd.DataFrame, spread_bps: float) -> tuple[FloatArray, FloatArray]:
    """Each bar's bid and ask: its own columns, else close -/+ half of `spread_bps` (a full spread)."""
    close = df["close"].to_numpy(np.float64)
    half = spread_bps * 1e-4 / 2
    bid = df["bid"].to_numpy(np.float64) if "bid" in df.columns else close * (1 - half)
    ask = df["ask"].to_numpy(np.float64) if "ask" in df.columns else close * (1 + half)
    return bid, ask


def make_market(
    df: pd.DataFrame, features: Float32Array, spread_bps: float = 2.0, bars_per_year: float | None = None
) -> Market:
    """Build simulator arrays; without bid/ask columns the quote is close -/+ half of `spread_bps`.

    Args:
        df: the validated market frame.
        features: normalised feature rows, one per bar.
        spread_bps: full spread assumed when the frame has no bid/ask columns.
        bars_per_year: annualisation of every Sharpe ratio: the data's calendar
            (`data_calendar(spec, df).bars_per_year`, which honours data.bars_per_year); None infers
            the calendar from the frame's stamps.
    """
    close = df["close"].to_numpy(dtype=np.float64)
    bid, ask = quotes(df, spread_bps)
    step = pd.Series(df.index).diff().median()
    hours = step / pd.Timedelta(hours=1)
    if bars_per_year is None:
        bars_per_year = infer_calendar(pd.DatetimeIndex(df.index)).bars_per_year
    return Market(
        high=np.ascontiguousarray(df["high"].to_numpy(np.float64)),
        low=np.ascontiguousarray(df["low"].to_numpy(np.float64)),
        close=np.ascontiguousarray(close),
        bid=np.ascontiguousarray(bid),
        ask=np.ascontiguousarray(ask),
        features=np.ascontiguousarray(features, dtype=np.float32),
        hours_per_bar=float(hours),
        bars_per_year=float(bars_per_year),
    )
