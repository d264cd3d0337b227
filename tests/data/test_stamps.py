"""Timestamp columns to UTC: strings with a format or day-first, epochs in any unit, local zones."""

from __future__ import annotations

import pandas as pd
import pytest

from rlpipe.data.stamps import parse_stamps
from rlpipe.errors import ConfigError, DataError

WHERE = "bars.csv: column 'Date'"
UTC = pd.DatetimeIndex(["2017-01-13 00:00", "2017-01-13 01:00", "2017-02-01 00:00"], tz="UTC")


def parse(values: list, **options: object) -> pd.DatetimeIndex:
    kwargs = {"fmt": None, "dayfirst": False, "timezone": "UTC", "unit": None, **options}
    return parse_stamps(pd.Series(values), WHERE, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_units_are_told_from_the_size_of_the_numbers(unit: str, scale: int) -> None:
    seconds = UTC.as_unit("s").asi8
    assert parse(list(seconds * scale)).equals(UTC)
    assert parse(list(seconds * scale), unit=unit).equals(UTC)
    assert parse([float(v) for v in seconds * scale]).equals(UTC)  # as a CSV with a blank cell reads them


def test_day_first_strings_with_a_format_or_dayfirst() -> None:
    values = ["13.01.2017 00:00:00.000", "13.01.2017 01:00:00.000", "01.02.2017 00:00:00.000"]
    assert parse(values, dayfirst=True).equals(UTC)
    assert parse(values, fmt="%d.%m.%Y %H:%M:%S.%f").equals(UTC)
    assert parse([20170113, 20170114], fmt="%Y%m%d").equals(
        pd.DatetimeIndex(["2017-01-13", "2017-01-14"], tz="UTC")
    )


def test_a_string_off_the_format_is_named_with_its_row() -> None:
    with pytest.raises(DataError) as err:
        parse(["13.01.2017 00:00", "2017-01-13 01:00"], fmt="%d.%m.%Y %H:%M")
    assert str(err.value).startswith(
        f"{WHERE} has an unparseable timestamp '2017-01-13 01:00' in data row 2 "
        "(data.timestamp_format='%d.%m.%Y %H:%M'); set data.timestamp_format"
    )


def test_offsets_are_kept_and_naive_stamps_are_local_times_of_the_zone() -> None:
    aware = parse(["2021-01-01 00:00+01:00", "2021-07-01 00:00+02:00"], timezone="America/New_York")
    assert aware.equals(pd.DatetimeIndex(["2020-12-31 23:00", "2021-06-30 22:00"], tz="UTC"))
    naive = parse(["2021-01-01 00:00", "2021-07-01 00:00"], timezone="America/New_York")
    assert naive.equals(pd.DatetimeIndex(["2021-01-01 05:00", "2021-07-01 04:00"], tz="UTC"))


def test_local_times_that_do_not_exist_or_cannot_be_told_apart_are_refused() -> None:
    with pytest.raises(DataError, match=r"local times cannot be placed in data\.timezone='Europe/Berlin'"):
        parse(["2021-03-28 01:00", "2021-03-28 02:30"], timezone="Europe/Berlin")  # clocks skip 02:00-03:00
    with pytest.raises(DataError, match=r"check data\.timezone, or export UTC or offset-aware stamps"):
        parse(["2021-10-31 01:00", "2021-10-31 02:30"], timezone="Europe/Berlin")  # 02:30 happens twice


def test_unknown_unit_or_zone_and_non_numbers_as_epochs() -> None:
    with pytest.raises(ConfigError, match=r"data\.timestamp_unit='m'"):
        parse([1, 2], unit="m")
    with pytest.raises(ConfigError, match=r"data\.timezone='Nowhere/Town' is not a time zone"):
        parse(["2021-01-01 00:00"], timezone="Nowhere/Town")
    with pytest.raises(DataError) as err:
        parse(["1484265600", "soon"], unit="s")
    assert str(err.value) == (
        f"{WHERE} has 'soon' in data row 2, not an epoch number (data.timestamp_unit='s'); "
        "set data.timestamp_unit=null for date strings"
    )


def test_missing_stamps_are_named_with_their_row_and_the_stamp_before() -> None:
    with pytest.raises(DataError) as err:
        parse([1484265600, None, 1484272800])
    assert str(err.value) == f"{WHERE} has a missing timestamp in data row 2 (after 1484265600.0)"


def test_a_column_of_milliseconds_then_microseconds_reads_each_in_its_own_unit() -> None:
    seconds = UTC.as_unit("s").asi8
    mixed = [seconds[0] * 10**3, seconds[1] * 10**3, seconds[2] * 10**6]  # Binance: ms, then us from 2025
    assert parse(mixed).equals(UTC)


@pytest.mark.parametrize(("unit", "year"), [("ms", 49004), ("s", 47_035_509)])
def test_a_set_unit_that_would_misplace_an_epoch_a_thousandfold_is_refused(unit: str, year: int) -> None:
    micro = int(UTC[0].value // 1000)
    with pytest.raises(DataError) as err:
        parse([micro], unit=unit)
    assert str(err.value) == (
        f"{WHERE} holds {micro} in data row 1, epoch microseconds of 2017-01-13 00:00:00+00:00; in "
        f"data.timestamp_unit={unit} it would fall in the year {year}; set data.timestamp_unit=null to "
        "tell the unit from each number's size (files in different units then read alike)"
    )
    assert parse([-86400, 0], unit="s").equals(pd.DatetimeIndex(["1969-12-31", "1970-01-01"], tz="UTC"))
