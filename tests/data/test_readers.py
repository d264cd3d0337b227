"""Vendor exports read with config values only (`DataSpec`), each then split into walk-forward slices.

The files are built here the way common vendors write them: Dukascopy-style day-first FX stamps,
Yahoo-style daily columns with `Adj Close`, Binance-style epoch milliseconds, local-time exports,
yearly chunks, one file per symbol. Every case ends the way a user's run does: the frame loads,
`SliceSpec(kind="walk_forward", embargo="7D")` builds without a leakage error, and the calendar
gives the bars per year of that market.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.data_config import DataSpec
from rlpipe.data.sources import load_data
from rlpipe.errors import ConfigError, DataError
from tests.support.markets import FX_BARS_PER_YEAR, fx_hours, load_and_slice, ohlcv, trading_days


# ------------------------------------------------------------------------------ timestamps
@pytest.mark.parametrize(
    "option", [{"dayfirst": True}, {"timestamp_format": "%d.%m.%Y %H:%M:%S.%f"}], ids=["dayfirst", "format"]
)
def test_day_first_fx_export_with_milliseconds(tmp_path: Path, option: dict) -> None:
    stamps = fx_hours("2017-01-01", "2017-12-31")
    table = pd.DataFrame({"Gmt time": stamps.strftime("%d.%m.%Y %H:%M:%S.000"), **ohlcv(len(stamps))})
    path = tmp_path / "EURUSD_Candlestick_1_Hour_BID.csv"
    table.to_csv(path, index=False)
    assert path.read_text().splitlines()[1].startswith("01.01.2017 22:00:00.000,")

    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path), **option), test_bars=500)
    pd.testing.assert_index_equal(df.index, stamps.as_unit(df.index.unit), check_names=False)
    assert pd.Timestamp("2017-01-13 00:00", tz="UTC") in df.index  # 13 January, not month 13
    assert calendar.kind == "24x5" and calendar.closed_days == (4, 5)  # Fri 21:00 to Sun 21:00 UTC
    assert calendar.bars_per_year == pytest.approx(FX_BARS_PER_YEAR)

    with pytest.raises(DataError) as err:  # the month-first guess pandas makes from 01.01.2017
        load_data(DataSpec(source="csv", path=str(path)))
    row = list(table["Gmt time"]).index("13.01.2017 00:00:00.000") + 1
    assert str(err.value).startswith(
        f"{path}: column 'Gmt time' has an unparseable timestamp '13.01.2017 00:00:00.000' "
        f"in data row {row}; "
    )
    assert "data.dayfirst=true" in str(err.value) and "data.timestamp_format" in str(err.value)


def test_epoch_milliseconds_of_a_crypto_export(tmp_path: Path) -> None:
    stamps = pd.date_range("2022-01-01", periods=24 * 120, freq="1h", tz="UTC")
    ms = stamps.as_unit("ms").asi8
    table = pd.DataFrame({"open_time": ms, **ohlcv(len(stamps), 3), "close_time": ms + 3_599_999})
    path = tmp_path / "BTCUSDT-1h.parquet"
    table.to_parquet(path, index=False)

    df, calendar = load_and_slice(DataSpec(source="parquet", path=str(path)), test_bars=24 * 14)
    pd.testing.assert_index_equal(df.index, stamps.as_unit(df.index.unit), check_names=False)
    assert calendar.kind == "24x7" and calendar.bars_per_year == 8766.0
    seconds = load_data(DataSpec(source="parquet", path=str(path), timestamp_unit="ms"))
    pd.testing.assert_frame_equal(seconds, df)


def test_integers_that_are_no_epoch_are_refused_naming_the_unit_key(tmp_path: Path) -> None:
    table = pd.DataFrame({"timestamp": np.arange(1000, 1100), **ohlcv(100)})
    path = tmp_path / "rows.parquet"
    table.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="parquet", path=str(path)))
    assert str(err.value) == (
        f"{path}: column 'timestamp' holds numbers (1000 in data row 1) that are not epoch seconds, "
        "milliseconds, microseconds or nanoseconds of a date between 1980 and 2100; set "
        "data.timestamp_unit (s, ms, us or ns) if they are epochs, or data.timestamp_format "
        "(e.g. '%Y%m%d') if they are dates written as numbers"
    )


def test_naive_local_times_are_placed_in_data_timezone_across_both_dst_changes(tmp_path: Path) -> None:
    stamps = pd.date_range("2021-03-01", "2021-11-30 23:00", freq="1h", tz="UTC")
    local = stamps.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H:%M")
    assert "2021-03-28 02:00" not in set(local) and list(local).count("2021-10-31 02:00") == 2
    path = tmp_path / "dax_local.csv"
    pd.DataFrame({"DateTime": local, **ohlcv(len(stamps), 4)}).to_csv(path, index=False)

    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path), timezone="Europe/Berlin"), 24 * 7)
    pd.testing.assert_index_equal(df.index, stamps.as_unit(df.index.unit), check_names=False)
    assert df.index[df.index.get_loc(pd.Timestamp("2021-03-28 00:00", tz="UTC")) + 1].hour == 1
    assert calendar.kind == "24x7" and calendar.bars_per_year == 8766.0
    with pytest.raises(DataError, match=r"duplicate timestamp 2021-10-31 02:00:00\+00:00"):
        load_data(DataSpec(source="csv", path=str(path)))  # read as UTC, the repeated hour collides


def test_exchange_sessions_in_local_time_give_bars_per_session_times_252(tmp_path: Path) -> None:
    days = trading_days("2020-01-01", "2021-12-31")
    local = [day + pd.Timedelta(hours=9, minutes=30 + 60 * k) for day in days for k in range(7)]
    path = tmp_path / "SPY_1h.csv"
    pd.DataFrame(
        {"Datetime": pd.DatetimeIndex(local).strftime("%Y-%m-%d %H:%M"), **ohlcv(len(local))}
    ).to_csv(path, index=False)
    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path), timezone="America/New_York"), 140)
    assert df.index[0] == pd.Timestamp("2020-01-02 14:30", tz="UTC")  # 09:30 EST
    assert pd.Timestamp("2020-07-01 13:30", tz="UTC") in df.index  # 09:30 EDT
    assert calendar.kind == "sessions" and calendar.bars_per_year == 7 * 252


def test_date_and_time_columns_of_a_semicolon_export_are_one_timestamp(tmp_path: Path) -> None:
    stamps = fx_hours("2019-01-06", "2019-06-30")
    table = pd.DataFrame(
        {"<DATE>": stamps.strftime("%Y.%m.%d"), "<TIME>": stamps.strftime("%H:%M"), **ohlcv(len(stamps))}
    )
    path = tmp_path / "EURUSD_H1.csv"
    table.rename(columns={"Volume": "<TICKVOL>"}).to_csv(path, index=False, sep=";")
    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path)), test_bars=300)
    pd.testing.assert_index_equal(df.index, stamps.as_unit(df.index.unit), check_names=False)
    np.testing.assert_array_equal(df["volume"].to_numpy(), table["Volume"].to_numpy(float))
    assert calendar.kind == "24x5"


# ------------------------------------------------------------------------------ columns
@pytest.mark.parametrize("adj_close", ["ignore", "use"])
def test_yahoo_daily_columns_with_adj_close_and_holidays(tmp_path: Path, adj_close: str) -> None:
    days = trading_days("2015-01-02", "2019-12-31")  # starts on a Friday: the first step is 3 days
    table = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), **ohlcv(len(days), 1)})
    table.insert(5, "Adj Close", table["Close"] * np.linspace(0.8, 1.0, len(days)))
    path = tmp_path / "AAPL.csv"
    table.to_csv(path, index=False)

    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path), adj_close=adj_close), test_bars=60)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert pd.Timestamp("2016-07-04", tz="UTC") not in df.index and len(df) == len(days)
    factor = table["Adj Close"] / table["Close"] if adj_close == "use" else 1.0
    np.testing.assert_allclose(df["close"].to_numpy(), (table["Close"] * factor).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(df["open"].to_numpy(), (table["Open"] * factor).to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(df["volume"].to_numpy(), table["Volume"].to_numpy(float))
    assert calendar.kind == "business_days" and calendar.bars_per_year == 252.0


def test_adj_close_options_are_checked(tmp_path: Path) -> None:
    days = trading_days("2020-01-01", "2020-03-31")
    path = tmp_path / "plain.csv"
    pd.DataFrame({"Date": days, **ohlcv(len(days))}).to_csv(path, index=False)
    with pytest.raises(ConfigError) as err:
        load_data(DataSpec(source="csv", path=str(path), adj_close="yes"))
    assert str(err.value) == "data.adj_close='yes'; expected one of ['ignore', 'use']"
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=str(path), adj_close="use"))
    assert str(err.value).startswith(f"{path}: data.adj_close=use, but there is no adjusted-close column")
    assert "'Date', 'Open', 'High', 'Low', 'Close', 'Volume'" in str(err.value)


def test_explicit_column_mapping_and_an_unknown_column_named_with_those_found(tmp_path: Path) -> None:
    days = trading_days("2018-01-01", "2019-12-31")
    table = pd.DataFrame({"Dates": days, **ohlcv(len(days), 2)}).rename(columns={"Close": "PX_LAST"})
    path = tmp_path / "bbg.csv"
    table.to_csv(path, index=False)
    mapping = {"Dates": "timestamp", "PX_LAST": "close"}
    df, calendar = load_and_slice(DataSpec(source="csv", path=str(path), columns=mapping), test_bars=60)
    np.testing.assert_array_equal(df["close"].to_numpy(), table["PX_LAST"].to_numpy())
    assert calendar.bars_per_year == 252.0

    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=str(path), columns={"Dates": "timestamp", "Px_Close": "close"}))
    found = ["Dates", "Open", "High", "Low", "PX_LAST", "Volume"]
    assert str(err.value) == (
        f"{path}: data.columns names column 'Px_Close', which the file does not have; columns found: {found}"
    )
    with pytest.raises(ConfigError, match=r"data\.columns maps 'PX_LAST' to 'last'; expected one of"):
        load_data(DataSpec(source="csv", path=str(path), columns={"PX_LAST": "last"}))
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=str(path), columns={"Dates": "timestamp"}))
    assert str(err.value).startswith(f"{path}: missing column(s) ['close']; found {found}; map a column")


# ------------------------------------------------------------------------------ several files
def _chunks(tmp_path: Path, bounds: list[tuple[int, int]]) -> tuple[pd.DatetimeIndex, list[str]]:
    stamps = pd.date_range("2022-01-01", periods=24 * 90, freq="1h", tz="UTC")
    table = pd.DataFrame({"timestamp": stamps, **ohlcv(len(stamps), 5)})
    paths = []
    for k, (lo, hi) in enumerate(bounds):
        paths.append(str(tmp_path / f"part{k}.csv"))
        table.iloc[lo:hi].to_csv(paths[-1], index=False)
    return stamps, paths


def test_several_files_are_joined_in_time_order(tmp_path: Path) -> None:
    stamps, paths = _chunks(tmp_path, [(0, 700), (700, 1500), (1500, 24 * 90)])
    spec = DataSpec(source="csv", path=[paths[2], paths[0], paths[1]])  # listed in any order
    df, calendar = load_and_slice(spec, test_bars=24 * 7)
    pd.testing.assert_index_equal(df.index, stamps.as_unit(df.index.unit), check_names=False)
    assert calendar.bars_per_year == 8766.0


@pytest.mark.parametrize("bounds", [[(0, 700), (690, 1500)], [(0, 700), (699, 1500)]], ids=["overlap", "dup"])
def test_files_that_overlap_are_refused_naming_both(tmp_path: Path, bounds: list[tuple[int, int]]) -> None:
    stamps, paths = _chunks(tmp_path, bounds)
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=paths))
    assert str(err.value).startswith(
        f"{paths[1]} overlaps {paths[0]}: it starts at {stamps[bounds[1][0]]}, before {paths[0]} ends at "
        f"{stamps[699]}; data.path lists consecutive chunks of one instrument"
    )


def test_a_hole_between_two_files_names_both(tmp_path: Path) -> None:
    stamps, paths = _chunks(tmp_path, [(0, 700), (1500, 24 * 90)])
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=paths))
    assert str(err.value).startswith(
        f"{paths[0]} and {paths[1]}: gap of {stamps[1500] - stamps[699]} between {stamps[699]} and "
        f"{stamps[1500]} exceeds the tolerance 1 days 00:00:00 of the data's 24x7 calendar"
    )


def test_symbol_is_put_into_the_path(tmp_path: Path) -> None:
    stamps = fx_hours("2018-01-01", "2018-06-30")
    for seed, symbol in enumerate(["EURUSD", "GBPUSD"]):
        frame = pd.DataFrame(
            {"Gmt time": stamps.strftime("%d.%m.%Y %H:%M:%S.000"), **ohlcv(len(stamps), seed)}
        )
        frame.to_csv(tmp_path / f"{symbol}_1h.csv", index=False)
    pattern = str(tmp_path / "{symbol}_1h.csv")
    loaded = {
        s: load_and_slice(DataSpec(source="csv", path=pattern, symbol=s, dayfirst=True), test_bars=300)
        for s in ("EURUSD", "GBPUSD")
    }
    for seed, (df, calendar) in enumerate(loaded.values()):
        np.testing.assert_array_equal(df["close"].to_numpy(), ohlcv(len(stamps), seed)["Close"])
        assert calendar.bars_per_year == pytest.approx(FX_BARS_PER_YEAR)
    with pytest.raises(ConfigError, match=r"has a \{symbol\} placeholder but data\.symbol is not set"):
        load_data(DataSpec(source="csv", path=pattern))
    with pytest.raises(ConfigError, match=r"data\.symbol='EURUSD', but data\.path=.* has no \{symbol\}"):
        load_data(DataSpec(source="csv", path=str(tmp_path / "EURUSD_1h.csv"), symbol="EURUSD"))


# ------------------------------------------------------------------------------ holes
@pytest.mark.parametrize("market", ["24x7", "24x5"])
def test_a_60_day_hole_in_hourly_data_is_refused_by_default(tmp_path: Path, market: str) -> None:
    if market == "24x7":
        stamps = pd.date_range("2021-01-01", "2021-12-31 23:00", freq="1h", tz="UTC")
    else:
        stamps = fx_hours("2021-01-03", "2021-12-31")
    hole = (stamps >= pd.Timestamp("2021-05-01", tz="UTC")) & (stamps < pd.Timestamp("2021-06-30", tz="UTC"))
    kept = stamps[~hole]
    path = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": kept, **ohlcv(len(kept))}).to_csv(path, index=False)
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=str(path)))
    before, after = (
        kept[kept < pd.Timestamp("2021-05-01", tz="UTC")][-1],
        kept[kept >= pd.Timestamp("2021-06-30", tz="UTC")][0],
    )
    msg = str(err.value)
    assert msg.startswith(f"{path}: gap of ") and f"between {before} and {after} exceeds the tolerance" in msg
    assert f"of the data's {market} calendar" in msg and "(data.max_gap is null)" in msg
    measured = f"{after - before} between" if market == "24x7" else "of trading time between"
    assert measured in msg  # FX: elapsed time less the weekends
    _, calendar = load_and_slice(DataSpec(source="csv", path=str(path), max_gap="70D"), test_bars=24 * 7)
    assert calendar.max_gap == pd.Timedelta("70D")


def test_weekends_are_not_gaps_even_with_a_tight_tolerance(tmp_path: Path) -> None:
    stamps = fx_hours("2019-01-06", "2019-12-31")
    path = tmp_path / "fx.csv"
    pd.DataFrame({"timestamp": stamps, **ohlcv(len(stamps))}).to_csv(path, index=False)
    df, _ = load_and_slice(DataSpec(source="csv", path=str(path), max_gap="2h"), test_bars=300)
    assert df.index.to_series().diff().max() >= pd.Timedelta("2 days 01:00:00")  # weekends
    # three hours missing inside a trading day:
    pd.DataFrame({"timestamp": stamps.delete(range(1000, 1003)), **ohlcv(len(stamps) - 3)}).to_csv(
        path, index=False
    )
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="csv", path=str(path), max_gap="2h"))
    assert str(err.value).startswith(
        f"{path}: gap of 0 days 04:00:00 of trading time between {df.index[999]} and {df.index[1003]} "
        "exceeds the tolerance data.max_gap=0 days 02:00:00"
    )
