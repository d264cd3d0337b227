"""Validation of the market-data contract.

A market frame has a UTC `DatetimeIndex`, strictly increasing and unique, of at least 2 bars,
and the numeric columns open, high, low, close and volume, with optional bid and ask (the loaders
cast them to float; other columns, such as the synthetic market's `regime`, are not checked).
Every value is finite, prices are positive and volume is not negative; in every bar low <= high,
open and close lie within [low, high] and bid <= ask. Consecutive bars are at most the calendar's
`max_gap` apart in trading time, so weekends, nights and (within the tolerance) holidays pass.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from rlpipe.data.calendar import DAY, Calendar, infer_calendar
from rlpipe.errors import DataError

REQUIRED_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
OPTIONAL_COLUMNS: tuple[str, ...] = ("bid", "ask")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "bid", "ask")


def _first_bad(df: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    return str(df.index[np.asarray(mask)][0])


def validate_market(
    df: pd.DataFrame,
    source: str,
    max_gap: pd.Timedelta | None = None,
    calendar: Calendar | None = None,
) -> None:
    """Check a market frame against the contract; raise `DataError` on the first violation.

    Args:
        df: candidate market frame.
        source: where it came from (a file path, or "synthetic"), named in every error.
        max_gap: largest allowed gap between consecutive bars in trading time (overrides the
            calendar's); with neither this nor `calendar`, gaps are not checked.
        calendar: the calendar that says what trading time is (None: inferred from the stamps).

    Raises:
        DataError: naming the source, the column and the first offending timestamp.
    """
    check_contract(df, source)
    if calendar is not None or max_gap is not None:
        cal = calendar or infer_calendar(df.index)
        check_gaps(df.index, source, cal if max_gap is None else replace(cal, max_gap=max_gap))


def check_contract(df: pd.DataFrame, source: str) -> None:
    """Every rule of the contract but the gaps: frame, stamps, values, bars."""
    _check_frame(df, source)
    _check_stamps(df, source)
    for col in (c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in df.columns):
        _check_column(df, col, source)
    _check_bars(df, source)


def check_gaps(index: pd.DatetimeIndex, source: str, calendar: Calendar, inferred: bool = False) -> None:
    """No two consecutive bars further apart than `calendar.max_gap` in the calendar's trading time.

    Args:
        index: sorted, unique UTC stamps.
        source: named in the error.
        calendar: what counts as trading time, and the tolerance.
        inferred: the tolerance is the calendar's own (data.max_gap was null); the error says so.
    """
    gaps = np.diff(calendar.trading_clock(index))
    bad = np.flatnonzero(gaps > calendar.max_gap.value)
    if not len(bad):
        return
    i = int(bad[0]) + 1
    measured = " of trading time" if calendar.closed_days or calendar.trading_day < DAY else ""
    tolerance = (
        f"the tolerance {calendar.max_gap} of the data's {calendar.describe()} (data.max_gap is null)"
        if inferred
        else f"the tolerance data.max_gap={calendar.max_gap}"
    )
    raise DataError(
        f"{source}: gap of {pd.Timedelta(int(gaps[i - 1]), unit='ns')}{measured} between {index[i - 1]} "
        f"and {index[i]} exceeds {tolerance}; fill the missing bars, or set data.max_gap if the "
        "market was closed"
    )


def _check_frame(df: pd.DataFrame, source: str) -> None:
    """Required columns, a UTC DatetimeIndex and at least 2 bars."""
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; expected {list(REQUIRED_COLUMNS)} "
            f"(optional {list(OPTIONAL_COLUMNS)}), found {list(df.columns)}"
        )
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(
            f"{source}: index must be timestamps (a DatetimeIndex), got {type(df.index).__name__}"
        )
    if df.index.tz is None or str(df.index.tz) != "UTC":
        raise DataError(f"{source}: timestamps must be UTC, got tz={df.index.tz}")
    if len(df) < 2:
        raise DataError(f"{source}: needs at least 2 bars, got {len(df)}")


BAR_HINT = "; fix or drop that bar in the file"
DUPLICATE_HINT = "; keep one bar per timestamp (drop or aggregate the duplicates)"
MAPPING_HINT = "; check the column mapping (data.columns) or fix that bar in the file"


def _check_stamps(df: pd.DataFrame, source: str) -> None:
    """Unique, strictly increasing stamps."""
    dup = df.index.duplicated()
    if dup.any():
        raise DataError(f"{source}: duplicate timestamp {_first_bad(df, dup)}{DUPLICATE_HINT}")
    steps = np.diff(df.index.as_unit("ns").asi8)  # pandas 3 indexes may be in us/ms/s
    if (steps <= 0).any():
        bad = np.flatnonzero(steps <= 0)[0] + 1
        raise DataError(
            f"{source}: timestamps not strictly increasing at {df.index[bad]} "
            f"(after {df.index[bad - 1]}); sort the file by time"
        )


def _check_column(df: pd.DataFrame, col: str, source: str) -> None:
    """One price or volume column: numeric, finite, positive prices, non-negative volume."""
    if not pd.api.types.is_numeric_dtype(df[col]):
        coerced = pd.to_numeric(df[col], errors="coerce")
        bad_cell = coerced.isna() & df[col].notna()
        if bad_cell.any():
            value, stamp = df[col][bad_cell].iloc[0], _first_bad(df, bad_cell)
            raise DataError(
                f"{source}: column '{col}' has a non-numeric value {value!r} at {stamp}{BAR_HINT}"
            )
        raise DataError(f"{source}: column '{col}' is not numeric (dtype {df[col].dtype})")
    values = df[col].to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{source}: column '{col}' has NaN/inf at {_first_bad(df, bad)}{BAR_HINT}")
    if col in PRICE_COLUMNS and (values <= 0).any():
        raise DataError(
            f"{source}: column '{col}' has a non-positive price at {_first_bad(df, values <= 0)}{BAR_HINT}"
        )
    if col == "volume" and (values < 0).any():
        raise DataError(f"{source}: column 'volume' is negative at {_first_bad(df, values < 0)}{BAR_HINT}")


def _check_bars(df: pd.DataFrame, source: str) -> None:
    """Each bar's prices agree: low <= high, open and close within [low, high], bid <= ask."""
    high, low = df["high"].to_numpy(float), df["low"].to_numpy(float)
    if (high < low).any():
        raise DataError(
            f"{source}: column 'high' is below 'low' at {_first_bad(df, high < low)}{MAPPING_HINT}"
        )
    for col in ("open", "close"):
        v = df[col].to_numpy(float)
        outside = (v > high * (1 + 1e-9)) | (v < low * (1 - 1e-9))
        if outside.any():
            stamp = _first_bad(df, outside)
            raise DataError(f"{source}: column '{col}' lies outside [low, high] at {stamp}{MAPPING_HINT}")
    if "bid" in df.columns and "ask" in df.columns:
        crossed = df["bid"].to_numpy(float) > df["ask"].to_numpy(float)
        if crossed.any():
            raise DataError(
                f"{source}: column 'bid' is above 'ask' at {_first_bad(df, crossed)}{MAPPING_HINT}"
            )
