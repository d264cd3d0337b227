"""The trading calendar read from the stamps: kind, bar, bars per year, trading time and gap tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.tseries.holiday import USFederalHolidayCalendar

from rlpipe.data.calendar import DAY, Calendar, infer_calendar
from rlpipe.data.data_config import DataSpec, Segment
from rlpipe.data.sources import data_calendar, load_data
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.errors import ConfigError, DataError

H = pd.Timedelta("1h")


def fx_hours(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly FX bars in UTC: Sunday 17:00 to Friday 17:00 New York time."""
    ny = pd.date_range(start, end, freq="1h", tz="America/New_York")
    day, hour = ny.day_of_week, ny.hour
    utc = ny[(day < 4) | ((day == 4) & (hour < 17)) | ((day == 6) & (hour >= 17))].tz_convert("UTC")
    return utc[~utc.duplicated()]


def trading_days(start: str, end: str) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, end)
    return days[~days.isin(USFederalHolidayCalendar().holidays(start, end))].tz_localize("UTC")


def sessions(minutes: int, holidays: bool = True) -> pd.DatetimeIndex:
    """NYSE bars of `minutes` from 09:30 to 16:00 New York time, over 2021, in UTC."""
    days = trading_days("2021-01-01", "2021-12-31").tz_localize(None)
    days = days if holidays else pd.bdate_range("2021-01-01", "2021-12-31")
    per_day = pd.timedelta_range("9h30min", "15h59min", freq=f"{minutes}min")
    local = (days.values[:, None] + per_day.values[None, :]).ravel()
    return pd.DatetimeIndex(local).tz_localize("America/New_York").tz_convert("UTC")


# ------------------------------------------------------------------------------ kinds
def test_the_synthetic_hourly_market_is_24x7_with_8766_bars_a_year() -> None:
    df = make_synthetic_market(seed=0, segments=[Segment("bull", 30)])
    calendar = infer_calendar(df.index)
    assert calendar == Calendar("24x7", H, 8766.0, DAY)  # 24 x 365.25, as before calendars
    assert calendar.describe() == "24x7 calendar of 1h bars, 8766 bars a year"


def test_daily_bars_on_weekdays_with_holidays_are_business_days_of_252_a_year() -> None:
    calendar = infer_calendar(trading_days("2015-01-01", "2019-12-31"))
    assert (calendar.kind, calendar.bar, calendar.bars_per_year) == ("business_days", DAY, 252.0)
    assert calendar.closed_days == (5, 6) and calendar.max_gap == 8 * DAY
    assert calendar.describe() == (
        "business_days calendar of 1D bars, 252 bars a year, closed Sat 00:00 to Mon 00:00 UTC"
    )


def test_hourly_fx_is_24x5_closed_from_the_friday_close_to_the_sunday_open() -> None:
    calendar = infer_calendar(fx_hours("2017-01-01", "2018-12-31"))
    assert calendar.kind == "24x5" and calendar.bar == H
    assert calendar.bars_per_year == pytest.approx(365.25 * 5 / 7 * 24)  # 6261.4
    assert calendar.closed_days == (4, 5) and calendar.day_start == pd.Timedelta("21h")
    assert calendar.max_gap == 3 * DAY
    assert calendar.describe().endswith("closed Fri 21:00 to Sun 21:00 UTC")


@pytest.mark.parametrize(("minutes", "per_session"), [(60, 7), (30, 13), (5, 78)])
def test_exchange_sessions_are_bars_per_session_times_252(minutes: int, per_session: int) -> None:
    calendar = infer_calendar(sessions(minutes))
    assert calendar.kind == "sessions" and calendar.bar == pd.Timedelta(minutes=minutes)
    assert calendar.bars_per_year == per_session * 252
    assert calendar.closed_days == (5, 6)
    # The session window in UTC covers both sides of daylight saving time (13:30-20:00 and 14:30-21:00).
    assert calendar.day_start <= pd.Timedelta("13h30min") and calendar.trading_day >= pd.Timedelta("7h30min")


@pytest.mark.parametrize(
    ("index", "kind", "bars_per_year"),
    [
        (pd.date_range("2021-01-01", periods=400, freq="1D", tz="UTC"), "24x7", 365.25),
        (pd.date_range("2021-01-01", periods=2000, freq="5min", tz="UTC"), "24x7", 105_192.0),
        (pd.date_range("2021-01-01", periods=100, freq="7D", tz="UTC"), "periodic", 365.25 / 7),
        (pd.date_range("2021-01-01", periods=2, freq="1h", tz="UTC"), "24x7", 8766.0),
    ],
    ids=["daily_crypto", "5min_crypto", "weekly", "two_bars"],
)
def test_other_calendars(index: pd.DatetimeIndex, kind: str, bars_per_year: float) -> None:
    calendar = infer_calendar(index)
    assert calendar.kind == kind and calendar.bars_per_year == pytest.approx(bars_per_year, rel=1e-12)


def test_a_calendar_needs_two_bars() -> None:
    with pytest.raises(DataError, match="a calendar needs at least 2 distinct bars, got 1"):
        infer_calendar(pd.DatetimeIndex(["2021-01-01"], tz="UTC"))


# ------------------------------------------------------------------------------ trading time
def test_weekends_and_holidays_are_not_trading_time() -> None:
    days = trading_days("2016-06-27", "2016-07-12")  # Monday 4 July is a holiday
    calendar = infer_calendar(days)
    gaps = pd.Series(np.diff(calendar.trading_clock(days)), index=days[1:])
    assert gaps[pd.Timestamp("2016-07-05", tz="UTC")] == 2 * DAY.value  # Fri -> Tue: the Monday off
    assert set(gaps.drop(pd.Timestamp("2016-07-05", tz="UTC"))) == {DAY.value}  # weekends cost nothing


def test_fx_weekends_are_one_bar_of_trading_time_on_both_sides_of_dst() -> None:
    index = fx_hours("2017-01-01", "2018-12-31")
    gaps = np.diff(infer_calendar(index).trading_clock(index))
    assert np.diff(index.as_unit("ns").asi8).max() >= (2 * DAY + H).value
    assert gaps.max() <= 2 * H.value  # one bar, or two on the weekends the clocks change


def test_session_nights_are_not_trading_time_but_holidays_are() -> None:
    index = sessions(60, holidays=False)
    calendar = infer_calendar(index)
    assert np.diff(calendar.trading_clock(index)).max() <= 3 * H.value  # 17h elapsed overnight, 65h a weekend
    index = sessions(60)  # with holidays: one session more of trading time
    gaps = np.diff(infer_calendar(index).trading_clock(index))
    assert gaps.max() <= 3 * H.value + calendar.trading_day.value < calendar.max_gap.value


# ------------------------------------------------------------------------------ config overrides
def test_data_keys_replace_the_inferred_tolerance_and_bars_per_year() -> None:
    df = make_synthetic_market(seed=0, segments=[Segment("bull", 10)])
    calendar = data_calendar(DataSpec(max_gap="6h", bars_per_year=365), df)
    assert (calendar.max_gap, calendar.bars_per_year, calendar.kind) == (6 * H, 365.0, "24x7")
    assert data_calendar(DataSpec(), df) == infer_calendar(df.index)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_gap": "soon"}, "data.max_gap='soon' is not a duration (e.g. '6h', '3D')"),
        ({"max_gap": "-1h"}, "data.max_gap='-1h'; must be positive (or null)"),
        ({"bars_per_year": 0}, "data.bars_per_year=0; must be positive (or null)"),
        (
            {"timestamp_unit": "min"},
            "data.timestamp_unit='min'; expected one of ['s', 'ms', 'us', 'ns'] or null",
        ),
        (
            {"timezone": "Mars/Olympus"},
            "data.timezone='Mars/Olympus' is not a time zone (e.g. 'UTC', 'Europe/London')",
        ),
    ],
)
def test_bad_data_keys_are_config_errors_naming_the_key(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_data(DataSpec(segments=[Segment("bull", 2)], **options))
    assert str(err.value) == message
