"""The market-data contract: bad data fails with a DataError naming the source, column and first bad stamp.

Most cases go through the real loader (`load_data`) on real CSV and Parquet files, so the error names
the file; the rest call `validate_market` on a frame. Loading itself (file formats, timestamp
parsing, column mapping) is tested in data/test_sources.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.calendar import infer_calendar
from rlpipe.data.validation import BAR_HINT, DUPLICATE_HINT, MAPPING_HINT, validate_market
from rlpipe.errors import DataError
from tests.support.markets import FORMATS, load_error, load_market, stamp, valid_table, write

FIX_GAP = "fill the missing bars, or set data.max_gap if the market was closed"


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return valid_table()


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
    assert msg == (
        f"{path}: timestamps not strictly increasing at {stamp(good, 5)} "
        f"(after {stamp(good, 6)}); sort the file by time"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_stamp_names_file_and_stamp(good: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    table = good.copy()
    table.loc[8, "timestamp"] = table.loc[7, "timestamp"]
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert "duplicate timestamp" in msg
    assert stamp(good, 7) in msg
    assert msg == f"{path}: duplicate timestamp {stamp(good, 7)}{DUPLICATE_HINT}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_gap_beyond_tolerance_names_file_stamp_and_setting(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    table = good.drop(index=range(10, 14))  # bars 10..13 missing: a 5h step before bar 14
    path, msg = load_error(table, fmt, tmp_path, max_gap="2h")
    assert str(path) in msg
    assert f"between {stamp(good, 9)} and {stamp(good, 14)}" in msg  # both bars around the hole
    assert "data.max_gap" in msg
    assert "0 days 05:00:00" in msg
    assert msg == (
        f"{path}: gap of 0 days 05:00:00 between {stamp(good, 9)} and {stamp(good, 14)} exceeds "
        f"the tolerance data.max_gap=0 days 02:00:00; {FIX_GAP}"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_gap_within_the_given_or_the_calendar_tolerance_is_accepted(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    table = good.drop(index=range(10, 14))
    path = write(table, fmt, tmp_path)
    assert len(load_market(fmt, path=str(path), max_gap="5h")) == len(good) - 4
    assert len(load_market(fmt, path=str(path))) == len(good) - 4  # 24x7 hourly: up to a day
    with pytest.raises(DataError, match="gap of 0 days 05:00:00"):
        load_market(fmt, path=str(path), max_gap="4h")  # a tolerance one hour shorter refuses it


@pytest.mark.parametrize("unit", ["ns", "us", "ms", "s"])
def test_gap_check_does_not_depend_on_index_resolution(good: pd.DataFrame, unit: str) -> None:
    df = good.drop(index=range(10, 14)).set_index("timestamp")
    df.index = df.index.as_unit(unit)
    with pytest.raises(DataError, match=r"exceeds the tolerance data\.max_gap"):
        validate_market(df, "frame", pd.Timedelta("2h"))
    with pytest.raises(DataError) as err:
        validate_market(df, "frame", pd.Timedelta("2h"))
    assert str(err.value) == (
        f"frame: gap of 0 days 05:00:00 between {stamp(good, 9)} and {stamp(good, 14)} exceeds "
        f"the tolerance data.max_gap=0 days 02:00:00; {FIX_GAP}"
    )
    assert validate_market(df, "frame", pd.Timedelta("5h")) is None


def test_non_utc_index_is_refused_by_validation(good: pd.DataFrame) -> None:
    df = good.set_index("timestamp")
    df.index = df.index.tz_convert("Europe/Berlin")
    with pytest.raises(DataError) as err:
        validate_market(df, "berlin.parquet")
    assert "berlin.parquet" in str(err.value) and "UTC" in str(err.value)
    assert str(err.value) == "berlin.parquet: timestamps must be UTC, got tz=Europe/Berlin"
    df.index = df.index.tz_localize(None)
    with pytest.raises(DataError, match=r"berlin\.parquet: timestamps must be UTC"):
        validate_market(df, "berlin.parquet")
    with pytest.raises(DataError) as err:
        validate_market(df, "berlin.parquet")
    assert str(err.value) == "berlin.parquet: timestamps must be UTC, got tz=None"


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("column", ["close", "volume", "bid"])
def test_nan_names_file_column_and_stamp(good: pd.DataFrame, fmt: str, column: str, tmp_path: Path) -> None:
    table = good.copy()
    table.loc[[12, 30], column] = np.nan
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert f"column '{column}' has NaN/inf at {stamp(good, 12)}" in msg
    assert msg == f"{path}: column '{column}' has NaN/inf at {stamp(good, 12)}{BAR_HINT}"


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
    assert msg == f"{path}: column '{column}' has a non-positive price at {stamp(good, 15)}{BAR_HINT}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_high_below_low_names_file_columns_and_stamp(good: pd.DataFrame, fmt: str, tmp_path: Path) -> None:
    table = good.copy()
    high, low = float(good.loc[20, "high"]), float(good.loc[20, "low"])
    table.loc[20, "high"], table.loc[20, "low"] = low, high
    path, msg = load_error(table, fmt, tmp_path)
    assert str(path) in msg
    assert f"column 'high' is below 'low' at {stamp(good, 20)}" in msg
    assert msg == f"{path}: column 'high' is below 'low' at {stamp(good, 20)}{MAPPING_HINT}"


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
    hint = BAR_HINT if "volume" in expected else MAPPING_HINT  # a bad value vs. columns that disagree
    assert msg == f"{path}: " + expected.split("{")[0] + stamp(good, row) + hint


def test_non_numeric_cell_names_file_column_and_stamp(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.astype({"close": object})
    table.loc[11, "close"] = "abc"
    path, msg = load_error(table, "csv", tmp_path)
    assert str(path) in msg
    assert "column 'close'" in msg
    assert stamp(good, 11) in msg
    assert msg == f"{path}: column 'close' has a non-numeric value 'abc' at {stamp(good, 11)}{BAR_HINT}"


def test_single_bar_is_refused(good: pd.DataFrame, tmp_path: Path) -> None:
    path, msg = load_error(good.iloc[:1], "csv", tmp_path)
    assert str(path) in msg and "at least 2 bars" in msg
    assert msg == f"{path}: needs at least 2 bars, got 1"


# ------------------------------------------------------------------------------ frames
@pytest.fixture
def frame(good: pd.DataFrame) -> pd.DataFrame:
    """The valid market as a frame indexed by its UTC stamps."""
    return good.set_index("timestamp")


def error(df: pd.DataFrame, max_gap: pd.Timedelta | None = None) -> str:
    with pytest.raises(DataError) as err:
        validate_market(df, "frame", max_gap)
    return str(err.value)


def test_a_valid_frame_passes_with_or_without_quotes_and_extra_columns(frame: pd.DataFrame) -> None:
    assert validate_market(frame, "frame", pd.Timedelta("1h")) is None
    assert validate_market(frame.drop(columns=["bid", "ask"]), "frame") is None
    assert validate_market(frame.assign(regime="bull", note=None), "frame") is None  # not checked
    assert validate_market(frame.astype({"volume": int}), "frame") is None  # numeric, not only float


def test_a_frame_missing_required_columns_names_them_and_the_contract(frame: pd.DataFrame) -> None:
    assert error(frame.drop(columns=["volume", "high"])) == (
        "frame: missing column(s) ['high', 'volume']; expected ['open', 'high', 'low', 'close', 'volume'] "
        "(optional ['bid', 'ask']), found ['open', 'low', 'close', 'bid', 'ask']"
    )


def test_a_frame_not_indexed_by_timestamps_is_refused(frame: pd.DataFrame) -> None:
    assert error(frame.reset_index(drop=True)) == (
        "frame: index must be timestamps (a DatetimeIndex), got RangeIndex"
    )


def test_a_frame_of_one_bar_is_refused(frame: pd.DataFrame) -> None:
    assert error(frame.iloc[:1]) == "frame: needs at least 2 bars, got 1"
    assert validate_market(frame.iloc[:2], "frame") is None


def test_an_object_column_without_a_bad_cell_is_named_with_its_dtype(frame: pd.DataFrame) -> None:
    assert error(frame.astype({"close": object})) == "frame: column 'close' is not numeric (dtype object)"


def test_inf_is_refused_like_nan(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df.iloc[4, df.columns.get_loc("volume")] = np.inf
    assert error(df) == f"frame: column 'volume' has NaN/inf at {df.index[4]}{BAR_HINT}"


def test_close_outside_the_bar_range_is_named(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df.iloc[9, df.columns.get_loc("close")] = df["low"].iloc[9] * 0.5
    assert error(df) == f"frame: column 'close' lies outside [low, high] at {df.index[9]}{MAPPING_HINT}"


def test_open_and_close_may_sit_on_the_bar_range_within_rounding(frame: pd.DataFrame) -> None:
    df = frame.copy()
    df["open"] = df["high"] * (1 + 1e-10)  # rounding, not a bad bar
    df["close"] = df["low"]
    df["bid"] = df["ask"]  # a locked quote is not crossed
    assert validate_market(df, "frame") is None
    df["open"] = df["high"] * (1 + 1e-8)
    assert error(df) == f"frame: column 'open' lies outside [low, high] at {df.index[0]}{MAPPING_HINT}"


def test_checks_run_in_the_documented_order(frame: pd.DataFrame) -> None:
    # Several violations at once: the frame-level one is reported first, then stamps, then values.
    df = frame.copy()
    df.iloc[3, df.columns.get_loc("close")] = np.nan
    df.iloc[2, df.columns.get_loc("high")] = 0.0
    assert (
        error(df) == f"frame: column 'high' has a non-positive price at {df.index[2]}{BAR_HINT}"
    )  # column order
    dup = df.iloc[[0, 1, 1, 2, 3]]
    assert error(dup) == f"frame: duplicate timestamp {df.index[1]}{DUPLICATE_HINT}"
    assert error(dup.drop(columns="volume")).startswith("frame: missing column(s) ['volume']")


def test_gaps_are_checked_in_the_trading_time_of_a_calendar(frame: pd.DataFrame) -> None:
    business = frame.iloc[:10].set_axis(pd.bdate_range("2021-01-01", periods=10, tz="UTC", name="timestamp"))
    assert validate_market(business, "frame", pd.Timedelta("1D")) is None  # the weekend is not a gap
    assert validate_market(business, "frame") is None  # no tolerance, no calendar: gaps unchecked
    calendar = infer_calendar(business.index)
    holiday = business.drop(index=business.index[3])  # Wednesday 6 January missing
    assert validate_market(holiday, "frame", calendar=calendar) is None  # within 8 trading days
    assert error(holiday, pd.Timedelta("1D")) == (
        f"frame: gap of 2 days 00:00:00 of trading time between {business.index[2]} and "
        f"{business.index[4]} exceeds the tolerance data.max_gap=1 days 00:00:00; {FIX_GAP}"
    )
