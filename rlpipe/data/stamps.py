"""Bar timestamps read from a file column: date strings, datetimes or epoch numbers, to UTC.

Strings are parsed with `data.timestamp_format` (strftime) when set, else by pandas' inference,
day-first when `data.dayfirst` is true. Numbers are epochs in `data.timestamp_unit`, or, when it
is null, in the unit each one's size implies (seconds, milliseconds, microseconds or nanoseconds of
a date between 1980 and 2100), so files, or rows, in different units read alike; a set unit that
would misplace a number another unit places in those years is refused. Stamps without a zone are
local times of `data.timezone`; stamps with an offset keep it. Every result is a UTC `DatetimeIndex`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from rlpipe.data.file_format import EPOCH_UNITS
from rlpipe.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_EPOCH_RANGE = (315_532_800, 4_102_444_800)  # 1980-01-01 .. 2100-01-01 in seconds
_SCALE = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_YEAR_SECONDS = 31_557_600
_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_HINT = (
    "set data.timestamp_format (strftime, e.g. '%d.%m.%Y %H:%M:%S.%f'), data.dayfirst=true for "
    "day-first dates, or data.timestamp_unit for epoch numbers"
)


def parse_stamps(
    values: pd.Series,
    where: str,
    *,
    fmt: str | None,
    dayfirst: bool,
    timezone: str,
    unit: str | None,
) -> pd.DatetimeIndex:
    """Parse one column of bar timestamps into a UTC index.

    Args:
        values: the column as read.
        where: "<file>: column '<name>'", the start of every error.
        fmt: strftime pattern of the strings (data.timestamp_format), or None to infer it.
        dayfirst: read ambiguous dates day-first (data.dayfirst).
        timezone: zone of stamps without an offset (data.timezone).
        unit: epoch unit of numbers (data.timestamp_unit), or None to tell it from their size.

    Raises:
        DataError: a missing, unparseable or implausible stamp (its data row and value named).
        ConfigError: an unknown epoch unit or time zone.
    """
    if unit is not None and unit not in EPOCH_UNITS:
        raise ConfigError(f"data.timestamp_unit={unit!r}; expected one of {list(EPOCH_UNITS)} or null")
    _check_missing(values, where)
    if pd.api.types.is_datetime64_any_dtype(values):
        return _to_utc(pd.DatetimeIndex(values), where, timezone)
    if unit is not None or (fmt is None and pd.api.types.is_numeric_dtype(values)):
        return _epochs(values, where, unit)
    if fmt is not None and pd.api.types.is_integer_dtype(values):
        values = values.astype(str)  # e.g. 20170113 with '%Y%m%d'
    return _to_utc(_strings(values, where, fmt, dayfirst), where, timezone)


def _check_missing(values: pd.Series, where: str) -> None:
    blank = values.isna().to_numpy().copy()
    if pd.api.types.is_string_dtype(values) or values.dtype == object:
        blank |= (values.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        row = int(np.flatnonzero(blank)[0])
        after = f" (after {values.iloc[row - 1]})" if row > 0 else ""
        raise DataError(f"{where} has a missing timestamp in data row {row + 1}{after}")


def _strings(values: pd.Series, where: str, fmt: str | None, dayfirst: bool) -> pd.DatetimeIndex:
    """Date strings to datetimes (naive, or UTC when they carry different offsets)."""
    try:
        parsed = pd.to_datetime(values, format=fmt, dayfirst=dayfirst, errors="coerce")
    except ValueError:  # offsets that differ (daylight saving time): convert each to UTC
        parsed = pd.to_datetime(values, format=fmt, dayfirst=dayfirst, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} has an unparseable timestamp {values.iloc[row]!r} in data row {row + 1}"
            + (f" (data.timestamp_format={fmt!r})" if fmt else "")
            + f"; {_HINT}"
        )
    return pd.DatetimeIndex(parsed)


def _epochs(values: pd.Series, where: str, unit: str | None) -> pd.DatetimeIndex:
    """Epoch numbers to UTC stamps, in `unit` or in the unit each number's size implies."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any():
        row = int(np.flatnonzero(numbers.isna().to_numpy())[0])
        raise DataError(
            f"{where} has {values.iloc[row]!r} in data row {row + 1}, not an epoch number "
            f"(data.timestamp_unit={unit!r}); set data.timestamp_unit=null for date strings"
        )
    sizes = _epoch_units(numbers.to_numpy(dtype=float), where, unit)
    if unit is None and len(set(sizes)) > 1:  # e.g. Binance klines: ms until 2024, us from 2025
        change = int(np.flatnonzero(sizes[1:] != sizes[:-1])[0]) + 1
        log.info(
            "%s: epoch %s up to data row %d, %s from row %d",
            where,
            sizes[0],
            change,
            sizes[change],
            change + 1,
        )
        parts = {size: _to_datetime(numbers[sizes == size], where, size) for size in set(sizes)}
        finest = max((p.dt.unit for p in parts.values()), key=list(_SCALE).index)
        stamps = np.empty(len(numbers), dtype=f"datetime64[{finest}]")
        for size, part in parts.items():
            stamps[sizes == size] = part.dt.tz_convert(None).to_numpy(dtype=f"datetime64[{finest}]")
        return pd.DatetimeIndex(stamps).tz_localize("UTC")
    return pd.DatetimeIndex(_to_datetime(numbers, where, unit or str(sizes[0])))


def _to_datetime(numbers: pd.Series, where: str, unit: str) -> pd.Series:
    try:
        return pd.to_datetime(numbers, unit=unit, utc=True)
    except (ValueError, OverflowError) as exc:
        raise DataError(
            f"{where}: epoch numbers out of range in unit {unit!r} (data.timestamp_unit): {exc}"
        ) from exc


def _epoch_units(numbers: np.ndarray, where: str, unit: str | None) -> np.ndarray:
    """The unit in which each number is a date between 1980 and 2100 (None where none is).

    Each unit's range is a factor 13 wide and the next unit's starts 1000 times higher, so a number
    fits one unit at most: reading a file in its own unit never misplaces a bar 1000-fold.

    Raises:
        DataError: a number that fits no unit (with `unit` null), or one that `unit` misplaces while
            another unit places it in those years.
    """
    sizes = np.full(len(numbers), None, dtype=object)
    for name, scale in _SCALE.items():
        sizes[(_EPOCH_RANGE[0] * scale <= numbers) & (numbers < _EPOCH_RANGE[1] * scale)] = name
    if unit is not None:
        _check_unit(numbers, sizes, where, unit)
        return sizes
    if (sizes == None).any():  # noqa: E711 - elementwise
        row = int(np.flatnonzero(sizes == None)[0])  # noqa: E711 - elementwise
        raise DataError(
            f"{where} holds numbers ({numbers[row]:.17g} in data row {row + 1}) that are not epoch seconds, "
            "milliseconds, microseconds or nanoseconds of a date between 1980 and 2100; set "
            "data.timestamp_unit (s, ms, us or ns) if they are epochs, or data.timestamp_format "
            "(e.g. '%Y%m%d') if they are dates written as numbers"
        )
    return sizes


def _check_unit(numbers: np.ndarray, sizes: np.ndarray, where: str, unit: str) -> None:
    """Refuse a number that data.timestamp_unit misplaces while its own size places it in 1980-2100."""
    misread = np.flatnonzero((sizes != None) & (sizes != unit))  # noqa: E711 - elementwise
    if not len(misread):
        return
    row = int(misread[0])
    size = str(sizes[row])
    stamp = pd.Timestamp(int(numbers[row]), unit=size, tz="UTC")
    year = 1970 + numbers[row] / _SCALE[unit] / _YEAR_SECONDS
    raise DataError(
        f"{where} holds {numbers[row]:.17g} in data row {row + 1}, epoch {_NAMES[size]} of {stamp}; in "
        f"data.timestamp_unit={unit} it would fall in the year {year:.0f}; set data.timestamp_unit=null "
        "to tell the unit from each number's size (files in different units then read alike)"
    )


def _to_utc(stamps: pd.DatetimeIndex, where: str, timezone: str) -> pd.DatetimeIndex:
    """Stamps with a zone converted to UTC; naive ones read as local times of `timezone`."""
    if stamps.tz is not None:
        return stamps.tz_convert("UTC")
    try:
        local = stamps.tz_localize(timezone, ambiguous="infer", nonexistent="raise")
    except LookupError as exc:  # zoneinfo: no such key
        raise ConfigError(
            f"data.timezone={timezone!r} is not a time zone (e.g. 'UTC', 'Europe/London', 'America/New_York')"
        ) from exc
    except ValueError as exc:  # a local time that does not exist, or repeats, in that zone
        raise DataError(
            f"{where}: local times cannot be placed in data.timezone={timezone!r}: {exc}; check "
            "data.timezone, or export UTC or offset-aware stamps"
        ) from exc
    return local.tz_convert("UTC")
