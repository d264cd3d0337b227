"""Bad market data fails with a DataError that names the file, the column and the first bad stamp.

Most cases go through the real loader (`load_market`) on real CSV and Parquet files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.sources import data_digest, load_market
from rlpipe.data.synthetic import Segment, make_synthetic_market
from rlpipe.data.validation import validate_market
from rlpipe.errors import DataError

FORMATS = ["csv", "parquet"]


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    """A valid hourly market of 48 bars with bid/ask, as a table with a `timestamp` column."""
    df = make_synthetic_market(seed=0, segments=[Segment("bull", 1), Segment("bear", 1)])
    return df.drop(columns="regime").reset_index()


def stamp(table: pd.DataFrame, row: int) -> str:
    """How a bar's timestamp is written in error messages."""
    return str(pd.Timestamp(table["timestamp"].iloc[row]))


def write(table: pd.DataFrame, fmt: str, tmp_path: Path, name: str = "market") -> Path:
    path = tmp_path / f"{name}.{fmt}"
    if fmt == "csv":
        table.to_csv(path, index=False)
    else:
        table.to_parquet(path, index=False)
    return path


def load_error(table: pd.DataFrame, fmt: str, tmp_path: Path, **kwargs: Any) -> tuple[Path, str]:
    path = write(table, fmt, tmp_path)
    with pytest.raises(DataError) as err:
        load_market(fmt, path=str(path), **kwargs)
    return path, str(err.value)


# ------------------------------------------------------------------------------ valid input
@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_file_loads_with_utc_index_and_float_columns(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    path = write(good, fmt, tmp_path)
    df = load_market(fmt, path=str(path), max_gap="1h")
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "bid", "ask"]
    assert str(df.index.tz) == "UTC"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert all(df[c].dtype == np.float64 for c in df.columns)
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")
    np.testing.assert_allclose(df["close"].to_numpy(), good["close"].to_numpy(), rtol=1e-15)


def test_column_names_are_case_insensitive_and_extra_columns_dropped(
    good: pd.DataFrame, tmp_path: Path
) -> None:
    table = good.rename(columns={"close": "Close", "volume": "VOLUME"}).assign(note="x")
    df = load_market("csv", path=str(write(table, "csv", tmp_path)))
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "bid", "ask"]


def test_custom_timestamp_column(good: pd.DataFrame, tmp_path: Path) -> None:
    path = write(good.rename(columns={"timestamp": "time"}), "csv", tmp_path)
    df = load_market("csv", path=str(path), timestamp_column="time")
    assert len(df) == len(good)
    assert df.index[-1] == pd.Timestamp(good["timestamp"].iloc[-1])


def test_non_utc_offsets_in_a_file_are_converted_to_utc(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.assign(timestamp=good["timestamp"].dt.tz_convert("Europe/Berlin"))
    path = write(table, "csv", tmp_path)
    assert "+01:00" in path.read_text().splitlines()[1]  # the file really holds local stamps
    df = load_market("csv", path=str(path))
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")


# ------------------------------------------------------------------------------ timestamps
@pytest.mark.parametrize("fmt", FORMATS)
def test_unsorted_stamps_name_file_and_first_out_of_order_stamp(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    table = good.copy()
    table.iloc[[5, 6]] = good.iloc[[6, 5]].to_numpy()
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert "not strictly increasing" in msg and "timestamp" in msg
    # Row 6 now holds the 05:00 bar, which comes after 06:00: the first offending stamp.
    assert f"at {stamp(good, 5)}" in msg
    assert f"after {stamp(good, 6)}" in msg


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_stamp_names_file_and_stamp(good: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    table = good.copy()
    table.loc[8, "timestamp"] = table.loc[7, "timestamp"]
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert "duplicate timestamp" in msg
    assert stamp(good, 7) in msg


@pytest.mark.parametrize("fmt", FORMATS)
def test_gap_beyond_tolerance_names_file_stamp_and_setting(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    table = good.drop(index=range(10, 14))  # bars 10..13 missing: a 5h step before bar 14
    path, msg = load_error(table, fmt, tmp_path, max_gap="2h")
    assert str(path) in msg
    assert f"before {stamp(good, 14)}" in msg
    assert "data.max_gap" in msg
    assert "0 days 05:00:00" in msg


@pytest.mark.parametrize("fmt", FORMATS)
def test_gap_within_tolerance_or_unchecked_is_accepted(good: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    table = good.drop(index=range(10, 14))
    path = write(table, fmt, tmp_path)
    assert len(load_market(fmt, path=str(path), max_gap="5h")) == len(good) - 4
    assert len(load_market(fmt, path=str(path))) == len(good) - 4


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_gap_check_does_not_depend_on_index_resolution(good: pd.DataFrame, unit: str) -> None:
    df = good.drop(index=range(10, 14)).set_index("timestamp")
    df.index = df.index.as_unit(unit)
    with pytest.raises(DataError, match=r"exceeds the tolerance data\.max_gap"):
        validate_market(df, "frame", pd.Timedelta("2h"))


def test_unparseable_stamp_names_file_column_and_value(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.assign(timestamp=good["timestamp"].astype(str))
    table.loc[9, "timestamp"] = "not a date"
    path, msg = load_error(table, "csv", tmp_path)
    assert str(path) in msg
    assert "column 'timestamp'" in msg
    assert "not a date" in msg


@pytest.mark.parametrize("row", [0, 9])
def test_blank_stamp_is_reported_as_a_missing_timestamp_of_the_column(
    good: pd.DataFrame, tmp_path: Path, row: int
) -> None:
    table = good.assign(timestamp=good["timestamp"].astype(str))
    table.loc[row, "timestamp"] = ""
    path, msg = load_error(table, "csv", tmp_path)
    assert str(path) in msg
    assert "'timestamp'" in msg  # the column, not "sort the file by time"
    assert "sort the file" not in msg


def test_non_utc_index_is_refused_by_validation(good: pd.DataFrame) -> None:
    df = good.set_index("timestamp")
    df.index = df.index.tz_convert("Europe/Berlin")
    with pytest.raises(DataError) as err:
        validate_market(df, "berlin.parquet")
    assert "berlin.parquet" in str(err.value) and "UTC" in str(err.value)
    df.index = df.index.tz_localize(None)
    with pytest.raises(DataError, match=r"berlin\.parquet: timestamps must be UTC"):
        validate_market(df, "berlin.parquet")


def test_missing_timestamp_column_names_the_setting(good: pd.DataFrame, tmp_path: Path) -> None:
    path, msg = load_error(good.rename(columns={"timestamp": "date"}), "csv", tmp_path)
    assert str(path) in msg
    assert "'timestamp'" in msg and "data.timestamp_column" in msg


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column", ["close", "volume", "bid"])
def test_nan_names_file_column_and_stamp(good: pd.DataFrame, fmt: str, column: str, tmp_path: Path) -> None:
    table = good.copy()
    table.loc[[12, 30], column] = np.nan
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert f"column '{column}' has NaN/inf at {stamp(good, 12)}" in msg


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("column", "value"), [("low", 0.0), ("close", -1.0), ("ask", 0.0)])
def test_non_positive_price_names_file_column_and_stamp(
    good: pd.DataFrame, fmt: str, column: str, value: float, tmp_path: Path
) -> None:
    table = good.copy()
    table.loc[[15, 16], column] = value
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert f"column '{column}' has a non-positive price at {stamp(good, 15)}" in msg


@pytest.mark.parametrize("fmt", FORMATS)
def test_high_below_low_names_file_columns_and_stamp(good: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    table = good.copy()
    high, low = float(good.loc[20, "high"]), float(good.loc[20, "low"])
    table.loc[20, "high"], table.loc[20, "low"] = low, high
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert f"column 'high' is below 'low' at {stamp(good, 20)}" in msg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda t: t.assign(volume=np.where(t.index == 3, -5.0, t["volume"])),
            "column 'volume' is negative at {3}",
        ),
        (
            lambda t: t.assign(open=np.where(t.index == 4, t["high"] * 1.1, t["open"])),
            "column 'open' lies outside [low, high] at {4}",
        ),
        (
            lambda t: t.assign(bid=np.where(t.index == 5, t["ask"] * 1.01, t["bid"])),
            "column 'bid' is above 'ask' at {5}",
        ),
    ],
    ids=["negative_volume", "open_outside_range", "crossed_quote"],
)
def test_other_value_violations_name_column_and_stamp(
    good: pd.DataFrame,
    tmp_path: Path,
    mutate: Callable[[pd.DataFrame], pd.DataFrame],
    expected: str,
) -> None:
    path, msg = load_error(mutate(good), "parquet", tmp_path)
    row = int(expected.split("{")[1].rstrip("}"))
    assert str(path) in msg
    assert expected.split("{")[0] + stamp(good, row) in msg


def test_non_numeric_cell_names_file_column_and_stamp(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.astype({"close": object})
    table.loc[11, "close"] = "abc"
    path, msg = load_error(table, "csv", tmp_path)
    assert str(path) in msg
    assert "column 'close'" in msg
    assert stamp(good, 11) in msg


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("drop", [["volume"], ["high", "low"]])
def test_missing_columns_are_named(good: pd.DataFrame, fmt: str, drop: list[str], tmp_path: Path) -> None:
    path, msg = load_error(good.drop(columns=drop), fmt, tmp_path)
    assert str(path) in msg
    assert f"missing column(s) {drop}" in msg


def test_missing_bid_ask_is_allowed(good: pd.DataFrame, tmp_path: Path) -> None:
    df = load_market("csv", path=str(write(good.drop(columns=["bid", "ask"]), "csv", tmp_path)))
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]


def test_single_bar_is_refused(good: pd.DataFrame, tmp_path: Path) -> None:
    path, msg = load_error(good.iloc[:1], "csv", tmp_path)
    assert str(path) in msg and "at least 2 bars" in msg


# ------------------------------------------------------------------------------ sources
@pytest.mark.parametrize("fmt", FORMATS)
def test_nonexistent_path_is_named(fmt: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / f"bars.{fmt}"
    with pytest.raises(DataError) as err:
        load_market(fmt, path=str(missing))
    assert str(missing) in str(err.value)
    assert "no such file" in str(err.value)


def test_unreadable_parquet_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(DataError) as err:
        load_market("parquet", path=str(path))
    assert str(path) in str(err.value) and "cannot be read as parquet" in str(err.value)


def test_unknown_source_and_missing_path_name_the_setting() -> None:
    with pytest.raises(DataError, match=r"data\.source='excel'"):
        load_market("excel", path="x.xlsx")
    with pytest.raises(DataError, match=r"needs data\.path"):
        load_market("csv")


# ------------------------------------------------------------------------------ digest
def test_data_digest_identifies_the_bars_not_their_storage_resolution(good: pd.DataFrame) -> None:
    df = good.set_index("timestamp")
    as_ns = df.copy()
    as_ns.index = as_ns.index.as_unit("ns")
    assert data_digest(df) == data_digest(as_ns)  # same bars read from CSV (us) or Parquet (ns)
    changed = df.copy()
    changed.iloc[5, changed.columns.get_loc("close")] *= 1.0001
    assert data_digest(changed) != data_digest(df)
    assert len(data_digest(df)) == 16
