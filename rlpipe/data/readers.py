"""Bar files as vendors export them: CSV or Parquet, columns matched by name, chunks joined in time.

Column names are matched without regard to case, spaces or punctuation, against common aliases
(`Date`, `Time`, `Datetime`, `Gmt time`, `Open time`, `Adj Close`, `Close/Last`, `Vol`, ...);
`data.columns` maps any other name (file column -> ours). A `Date` column next to a `Time`
column is read as one timestamp. The adjusted close is dropped (`data.adj_close=ignore`) or
rescales open, high, low, close, bid and ask by adj_close / close (`use`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.stamps import parse_stamps
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, check_contract
from rlpipe.errors import ConfigError, DataError

ADJ_CLOSE_OPTIONS: tuple[str, ...] = ("ignore", "use")
OURS: tuple[str, ...] = ("timestamp", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "adj_close")
ALIASES: dict[str, tuple[str, ...]] = {  # normalised names, most specific first
    "timestamp": ("timestamp", "datetime", "date", "time", "gmttime", "utctime", "localtime", "opentime"),
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closelast", "last", "closeprice"),
    "volume": ("volume", "vol", "v", "tickvolume", "tickvol"),
    "bid": ("bid",),
    "ask": ("ask", "offer"),
    "adj_close": ("adjclose", "adjustedclose"),
}
_PRICES = ("open", "high", "low", "close", "bid", "ask")


@dataclass(frozen=True)
class FileFormat:
    """How bars are written in a file: the `data` keys about columns and timestamps."""

    timestamp_column: str
    timestamp_format: str | None
    dayfirst: bool
    timezone: str
    timestamp_unit: str | None
    columns: Mapping[str, str]
    adj_close: str


def normalised(name: object) -> str:
    """A column name compared without case, spaces or punctuation: 'Adj Close' -> 'adjclose'."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def read_frames(paths: list[str], kind: str, layout: FileFormat) -> list[tuple[pd.DataFrame, str]]:
    """Read every file as a checked market frame; in time order, refusing chunks that overlap.

    Returns (frame, file) pairs. Gaps are not checked here: they need the calendar of the whole.
    """
    parts = [(table_to_frame(raw, file, layout), file) for raw, file in (read_file(p, kind) for p in paths)]
    parts.sort(key=lambda part: part[0].index[0])
    for (a, file_a), (b, file_b) in pairwise(parts):
        if b.index[0] <= a.index[-1]:
            raise DataError(
                f"{file_b} overlaps {file_a}: it starts at {b.index[0]}, before {file_a} ends at "
                f"{a.index[-1]}; data.path lists consecutive chunks of one instrument, so each file "
                "must start after the one before ends (drop the repeated bars from one of them)"
            )
    return parts


def read_file(path: str, kind: str) -> tuple[pd.DataFrame, str]:
    """The raw table of one CSV (delimiter sniffed from the header) or Parquet file, and its name."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data.path={path}: no such file (resolved to {file.resolve()})")
    try:
        raw = pd.read_csv(file, sep=_delimiter(file)) if kind == "csv" else pd.read_parquet(file)
    except Exception as exc:  # the reader's own message is the useful part
        raise DataError(f"{file}: cannot be read as {kind}: {exc}") from exc
    return raw, str(file)


def _delimiter(file: Path) -> str:
    """The most frequent of , ; tab | in the header line (',' when none)."""
    with file.open(encoding="utf-8", errors="replace") as fh:
        header = fh.readline()
    counts = {sep: header.count(sep) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def table_to_frame(raw: pd.DataFrame, source: str, layout: FileFormat) -> pd.DataFrame:
    """A raw table (timestamp column, or a DatetimeIndex) as a market frame checked by the contract."""
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names=raw.index.name or "timestamp")
    names = match_columns([str(c) for c in raw.columns], source, layout)
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
    check_contract(df, source)
    if "adj_close" in df.columns:
        df = _adjusted(df, source, layout.adj_close, names["adj_close"])
    elif layout.adj_close == "use":
        raise DataError(
            f"{source}: data.adj_close=use, but there is no adjusted-close column (such as 'Adj Close'); "
            f"columns found: {list(raw.columns)}; map one with data.columns or set data.adj_close=ignore"
        )
    return df.astype(dict.fromkeys(df.columns, float))


def match_columns(found: list[str], source: str, layout: FileFormat) -> dict[str, str]:
    """Our column names -> the file's: data.columns first, then data.timestamp_column, then aliases.

    Raises:
        DataError: a mapped or required column is missing (the columns found are listed).
        ConfigError: data.columns maps to a name that is not one of ours.
    """
    by_name = {normalised(c): c for c in reversed(found)}  # the first of equal names wins
    names: dict[str, str] = {}
    for theirs, ours in layout.columns.items():
        if ours not in OURS:
            raise ConfigError(f"data.columns maps {theirs!r} to {ours!r}; expected one of {list(OURS)}")
        if normalised(theirs) not in by_name:
            raise DataError(
                f"{source}: data.columns names column {theirs!r}, which the file does not have; "
                f"columns found: {found}"
            )
        names[ours] = by_name[normalised(theirs)]
    taken = set(names.values())
    wanted = normalised(layout.timestamp_column)
    stamp_aliases = (wanted, *ALIASES["timestamp"]) if wanted in ALIASES["timestamp"] else (wanted,)
    for ours, aliases in {**ALIASES, "timestamp": stamp_aliases}.items():
        hit = next((by_name[a] for a in aliases if a in by_name and by_name[a] not in taken), None)
        if ours not in names and hit is not None:
            names[ours] = hit
            taken.add(hit)
    _require(names, found, source, layout.timestamp_column)
    return {ours: names[ours] for ours in OURS if ours in names}


def _require(names: dict[str, str], found: list[str], source: str, timestamp_column: str) -> None:
    if "timestamp" not in names:
        raise DataError(
            f"{source}: no timestamp column {timestamp_column!r} (set data.timestamp_column, or map "
            f"one with data.columns; Date, Time, Datetime and Timestamp are found by themselves); "
            f"columns are {found}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; found {found}; map a column of another name "
            "with data.columns (file column -> ours, e.g. {Px_Last: close})"
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
