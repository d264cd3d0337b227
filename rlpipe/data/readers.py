"""Bar files as vendors export them: CSV or Parquet, columns matched by name, chunks joined in time.

A CSV file's layout (encoding, separator, header rows, names, decimal mark) is read by
`rlpipe.data.csv_layout`; columns are matched to ours by `rlpipe.data.columns`. A `Date` column next
to a `Time` column is read as one timestamp. The adjusted close is dropped (`data.adj_close=ignore`)
or rescales open, high, low, close, bid and ask by adj_close / close (`use`).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.columns import match_columns, normalised
from rlpipe.data.csv_layout import COMMA_NUMBER, read_csv_table
from rlpipe.data.file_format import FileFormat
from rlpipe.data.stamps import parse_stamps
from rlpipe.data.validation import check_contract
from rlpipe.errors import ConfigError, DataError

_PRICES = ("open", "high", "low", "close", "bid", "ask")


def read_frames(paths: list[str], kind: str, layout: FileFormat) -> list[tuple[pd.DataFrame, str]]:
    """Read every file as a checked market frame; in time order, refusing chunks that overlap.

    Returns (frame, file) pairs. Gaps are not checked here: they need the calendar of the whole.
    """
    parts = [
        (table_to_frame(raw, file, layout), file) for raw, file in (read_file(p, kind, layout) for p in paths)
    ]
    parts.sort(key=lambda part: part[0].index[0])
    for (a, file_a), (b, file_b) in pairwise(parts):
        if b.index[0] <= a.index[-1]:
            raise DataError(
                f"{file_b} overlaps {file_a}: it starts at {b.index[0]}, before {file_a} ends at "
                f"{a.index[-1]}; data.path lists consecutive chunks of one instrument, so each file "
                "must start after the one before ends (drop the repeated bars from one of them)"
            )
    return parts


def read_file(path: str, kind: str, layout: FileFormat) -> tuple[pd.DataFrame, str]:
    """The raw table of one CSV file (laid out as `layout` says or as told) or Parquet file, and its name."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data.path={path}: no such file (resolved to {file.resolve()})")
    try:
        raw = read_csv_table(file, layout) if kind == "csv" else pd.read_parquet(file)
    except (DataError, ConfigError):
        raise
    except Exception as exc:  # the reader's own message is the useful part
        raise DataError(f"{file}: cannot be read as {kind}: {exc}") from exc
    return raw, str(file)


def table_to_frame(raw: pd.DataFrame, source: str, layout: FileFormat) -> pd.DataFrame:
    """A raw table (timestamp column, or a DatetimeIndex) as a market frame checked by the contract."""
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names=raw.index.name or "timestamp")
    names = match_columns(raw, source, layout)
    stamp_col = names.pop("timestamp")
    values = raw[stamp_col]
    time_col = _separate_time(raw, stamp_col, names)
    if time_col is not None:
        values = values.astype(str) + " " + raw[time_col].astype(str)
        stamp_col = f"{stamp_col}' + '{time_col}"
    index = parse_stamps(
        values,
        f"{source}: column '{stamp_col}'",
        fmt=layout.timestamp_format,
        dayfirst=layout.dayfirst,
        timezone=layout.timezone,
        unit=layout.timestamp_unit,
    )
    df = pd.DataFrame({ours: raw[col].to_numpy() for ours, col in names.items()}, index=index)
    df.index.name = "timestamp"
    _check_decimal_mark(df, names, source)
    check_contract(df, source)
    if "adj_close" in df.columns:
        df = _adjusted(df, source, layout.adj_close, names["adj_close"])
    elif layout.adj_close == "use":
        raise DataError(
            f"{source}: data.adj_close=use, but there is no adjusted-close column (such as 'Adj Close'); "
            f"columns found: {list(raw.columns)}; map one with data.columns or set data.adj_close=ignore"
        )
    return df.astype(dict.fromkeys(df.columns, float))


def _check_decimal_mark(df: pd.DataFrame, names: dict[str, str], source: str) -> None:
    """Refuse a number written with a decimal comma naming data.decimal (not one bar to fix)."""
    for ours, theirs in names.items():
        if pd.api.types.is_numeric_dtype(df[ours]):
            continue
        bad = pd.to_numeric(df[ours], errors="coerce").isna() & df[ours].notna()
        if not bad.any():
            continue
        value = str(df[ours][bad].iloc[0]).strip()
        if "," in value and COMMA_NUMBER.fullmatch(value):
            raise DataError(
                f"{source}: column '{theirs}' ({ours}) has {value!r} at {df.index[bad.to_numpy()][0]}, a "
                "number written with a decimal comma; set data.decimal=',' to read decimal commas"
            )


def _separate_time(raw: pd.DataFrame, stamp_col: str, names: dict[str, str]) -> str | None:
    """The `Time` column that completes a `Date` column holding dates only, if the file has one."""
    if normalised(stamp_col) != "date" or pd.api.types.is_datetime64_any_dtype(raw[stamp_col]):
        return None
    return next(
        (c for c in raw.columns if normalised(c) == "time" and c not in names.values()),
        None,
    )


def _adjusted(df: pd.DataFrame, source: str, option: str, column: str) -> pd.DataFrame:
    """Drop the adjusted close, or rescale every price by adj_close / close (`data.adj_close`)."""
    adj = df.pop("adj_close")
    if option == "ignore":
        return df
    values = pd.to_numeric(adj, errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        raise DataError(
            f"{source}: column '{column}' (the adjusted close, data.adj_close=use) has a missing, "
            f"non-numeric or non-positive value {adj.iloc[int(np.argmax(bad))]!r} at "
            f"{df.index[int(np.argmax(bad))]}"
        )
    factor = values / df["close"].to_numpy(dtype=float)
    out = df.astype(dict.fromkeys(df.columns, float))
    for col in (c for c in _PRICES if c in out.columns):
        out[col] = out[col].to_numpy() * factor
    return out
