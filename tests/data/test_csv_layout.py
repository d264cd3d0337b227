"""CSV files as vendors ship them, each written here in its own shape: a yfinance download saved with
pandas (three header rows), Binance kline archives (no header, epoch ms until 2024 and us from 2025),
a European spreadsheet export (';', decimal commas, day-first dates, German names, Windows-1252) and
a MetaTrader export (a `<VOL>` of zeros beside `<TICKVOL>`). Each reads with config only, and each
refusal names the option that reads the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rlpipe.cli.compose import group
from rlpipe.data.data_config import DataSpec
from rlpipe.data.sources import load_data
from rlpipe.errors import ConfigError, DataError
from tests.support.markets import european_export, fx_hours, kline_file, load_and_slice, ohlcv, trading_days

KLINE_NAMES = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]  # fmt: skip
GERMAN = {"Datum": "timestamp", "Eröffnung": "open", "Hoch": "high", "Tief": "low", "Schluss": "close"}


def csv(path: Path, **options: object) -> DataSpec:
    return DataSpec(source="csv", path=str(path), **options)  # type: ignore[arg-type]


def refusal(spec: DataSpec, kind: type[Exception] = DataError) -> str:
    with pytest.raises(kind) as err:
        load_data(spec)
    return str(err.value)


# ------------------------------------------------------------------------------ yfinance
def yfinance_csv(path: Path, days: pd.DatetimeIndex, tickers: list[str], by_ticker: bool = False) -> dict:
    """What `yfinance.download(tickers).to_csv(path)` writes: columns of two levels, Price and Ticker."""
    frames = {}
    for seed, ticker in enumerate(tickers):
        bars = ohlcv(len(days), seed)
        frames[ticker] = pd.DataFrame({k: bars[k] for k in ("Close", "High", "Low", "Open", "Volume")}, days)
    table = pd.concat(frames, axis=1, names=["Ticker", "Price"])
    table = table if by_ticker else table.swaplevel(axis=1).sort_index(axis=1, level=0, sort_remaining=False)
    table.rename_axis("Date").to_csv(path)
    return frames


def test_a_yfinance_download_saved_with_pandas_reads_as_it_is(tmp_path: Path) -> None:
    days = trading_days("2021-01-04", "2022-12-30")
    path = tmp_path / "AAPL.csv"
    frames = yfinance_csv(path, days, ["AAPL"])
    assert path.read_text().splitlines()[:3] == [
        "Price,Close,High,Low,Open,Volume",
        "Ticker,AAPL,AAPL,AAPL,AAPL,AAPL",
        "Date,,,,,",
    ]
    df, calendar = load_and_slice(csv(path), test_bars=60)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    np.testing.assert_array_equal(df["close"].to_numpy(), frames["AAPL"]["Close"].to_numpy())
    np.testing.assert_array_equal(df["volume"].to_numpy(), frames["AAPL"]["Volume"].to_numpy(float))
    assert df.index[0] == pd.Timestamp("2021-01-04", tz="UTC") and calendar.bars_per_year == 252.0
    pd.testing.assert_frame_equal(load_data(csv(path, header_rows=3)), df)


@pytest.mark.parametrize("by_ticker", [False, True], ids=["price-first", "group_by-ticker"])
def test_a_yfinance_download_of_several_tickers_is_read_one_at_a_time_by_symbol(
    tmp_path: Path, by_ticker: bool
) -> None:
    days = trading_days("2021-01-04", "2021-12-31")
    path = tmp_path / "prices.csv"
    frames = yfinance_csv(path, days, ["AAPL", "MSFT"], by_ticker)
    assert refusal(csv(path)) == (
        f"{path}: its Ticker row holds several tickers ['AAPL', 'MSFT']; pick one with data.symbol=AAPL "
        "(or sweep them: -m data.symbol=AAPL,MSFT)"
    )
    msft = load_data(csv(path, symbol="MSFT"))
    for ours, theirs in [("open", "Open"), ("close", "Close"), ("volume", "Volume")]:
        np.testing.assert_array_equal(msft[ours].to_numpy(), frames["MSFT"][theirs].to_numpy(float))
    assert refusal(csv(path, symbol="TSLA"), ConfigError) == (
        f"data.symbol='TSLA' is not in {path}'s Ticker row ['AAPL', 'MSFT']; pick one of them"
    )


# ------------------------------------------------------------------------------ Binance klines


def test_binance_monthly_files_in_milliseconds_and_microseconds_join_in_time(
    tmp_path: Path, compose_cfg: Callable
) -> None:
    december = pd.date_range("2024-12-01", "2024-12-31 23:00", freq="1h", tz="UTC")
    january = pd.date_range("2025-01-01", "2025-01-31 23:00", freq="1h", tz="UTC")
    files = [tmp_path / "BTCUSDT-1h-2024-12.csv", tmp_path / "BTCUSDT-1h-2025-01.csv"]
    bars = [kline_file(files[0], december, 1, "ms"), kline_file(files[1], january, 2, "us")]
    assert files[0].read_text().startswith("1733011200000,100.00000000,")
    assert files[1].read_text().startswith("1735689600000000,")
    paths = [str(f) for f in files]

    assert refusal(DataSpec(source="csv", path=paths)) == (
        f"{files[0]}: the first row (1733011200000, 100.00000000, {bars[0]['High'][0]:.8f}, ...) holds "
        "numbers, not column names: the file has no header row; name its 12 columns in file order with "
        "data.names=[timestamp,open,high,low,close,volume,...] (data=binance names those of a Binance "
        "kline file), or set data.header_rows=1 if that row is the header"
    )
    spec = group(compose_cfg("data=binance", f"data.path=[{paths[1]},{paths[0]}]").data)
    assert spec.names == KLINE_NAMES and spec.timestamp_unit is None
    df, calendar = load_and_slice(spec, test_bars=24 * 7)
    pd.testing.assert_index_equal(
        df.index, december.append(january).as_unit(df.index.unit), check_names=False
    )
    assert df.index[744] - df.index[743] == pd.Timedelta("1h")  # 2024-12-31 23:00 (ms), 2025-01-01 00:00 (us)
    np.testing.assert_array_equal(df["close"].to_numpy(), np.concatenate([b["Close"] for b in bars]).round(8))
    assert calendar.kind == "24x7" and calendar.bars_per_year == 8766.0

    # one unit for every file places a whole month 1000 times off: refused, naming the file
    assert refusal(DataSpec(source="csv", path=paths, names=KLINE_NAMES, timestamp_unit="ms")) == (
        f"{files[1]}: column 'open_time' holds 1735689600000000 in data row 1, epoch microseconds of "
        "2025-01-01 00:00:00+00:00; in data.timestamp_unit=ms it would fall in the year 56971; set "
        "data.timestamp_unit=null to tell the unit from each number's size (files in different units "
        "then read alike)"
    )
    ms_as_us = refusal(DataSpec(source="csv", path=paths, names=KLINE_NAMES, timestamp_unit="us"))
    assert ms_as_us.startswith(f"{files[0]}: column 'open_time' holds 1733011200000 in data row 1, epoch ")
    assert "in data.timestamp_unit=us it would fall in the year 1970;" in ms_as_us

    # the two months in one file (ms rows, then us rows), or with the futures archives' header row
    joined = tmp_path / "BTCUSDT-1h-2024-12..2025-01.csv"
    joined.write_text(files[0].read_text() + files[1].read_text())
    pd.testing.assert_frame_equal(load_data(DataSpec(source="csv", path=str(joined), names=KLINE_NAMES)), df)
    headed = tmp_path / "futures.csv"
    headed.write_text(",".join(KLINE_NAMES) + "\n" + joined.read_text())
    pd.testing.assert_frame_equal(load_data(DataSpec(source="csv", path=str(headed), names=KLINE_NAMES)), df)
    assert refusal(DataSpec(source="csv", path=paths, names=KLINE_NAMES[:6])) == (
        f"{files[0]}: data.names lists 6 names, but data row 1 has 12 fields; name every column in file order"
    )


# ------------------------------------------------------------------------------ European export


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8-sig"])
def test_a_european_spreadsheet_export_reads_with_its_names_mapped(tmp_path: Path, encoding: str) -> None:
    days = trading_days("2022-01-03", "2023-12-29")  # 03.01.2022 reads month-first unless told
    path = tmp_path / "dax.csv"
    bars = european_export(path, days, encoding)
    first = ";".join(f"{bars[k][0]:.2f}".replace(".", ",") for k in ("Open", "High", "Low", "Close"))
    assert path.read_bytes().splitlines()[1] == f"03.01.2022;{first};{bars['Volume'][0]}".encode()
    assert ("Eröffnung".encode(encoding.removesuffix("-sig")) in path.read_bytes()) and first.startswith(
        "100,00;"
    )
    found = ["Datum", "Eröffnung", "Hoch", "Tief", "Schluss", "Volumen"]
    ascii_hint = (
        "'Eröffnung' is not plain ASCII, so it cannot be written on the command line: map it in a config "
        "file (conf/data/csv.yaml shows how), or rename every column in file order with "
        "data.names=[timestamp,open,...] data.header_rows=1"
    )
    assert refusal(csv(path, timestamp_column="Datum")) == (
        f"{path}: missing column(s) ['open', 'high', 'low', 'close', 'volume']; found {found}; map a column "
        f"of another name with data.columns (file column -> ours, e.g. {{Px_Last: close}}); {ascii_hint}"
    )
    mapped = {**GERMAN, "Volumen": "volume"}
    assert refusal(csv(path, columns=mapped)).startswith(
        f"{path}: column 'Datum' has an unparseable timestamp '13.01.2022' in data row 9; "
    )
    df, calendar = load_and_slice(csv(path, columns=mapped, dayfirst=True), test_bars=60)
    np.testing.assert_array_equal(df["close"].to_numpy(), bars["Close"])  # 99,87 -> 99.87
    np.testing.assert_array_equal(df["volume"].to_numpy(), bars["Volume"].astype(float))
    assert pd.Timestamp("2022-01-13", tz="UTC") in df.index and calendar.bars_per_year == 252.0
    renamed = csv(
        path, names=["timestamp", "open", "high", "low", "close", "volume"], header_rows=1, dayfirst=True
    )
    pd.testing.assert_frame_equal(load_data(renamed), df)  # the command line's way: names by position
    assert refusal(csv(path, columns=mapped, dayfirst=True, decimal=".")) == (
        f"{path}: column 'Eröffnung' (open) has '100,00' at 2022-01-03 00:00:00+00:00, a number written "
        "with a decimal comma; set data.decimal=',' to read decimal commas"
    )


def test_decimal_commas_in_a_comma_separated_file_are_read_with_data_decimal(tmp_path: Path) -> None:
    days = trading_days("2022-01-03", "2022-12-30")
    path = tmp_path / "quoted.csv"
    bars = european_export(path, days, "utf-8", sep=",")
    assert path.read_text().splitlines()[1].startswith('03.01.2022,"100,00","100,10",')
    mapped = {**GERMAN, "Volumen": "volume"}
    assert refusal(csv(path, columns=mapped, dayfirst=True)) == (  # '1,234' could be a thousand here
        f"{path}: column 'Eröffnung' (open) has '100,00' at 2022-01-03 00:00:00+00:00, a number written "
        "with a decimal comma; set data.decimal=',' to read decimal commas"
    )
    df = load_data(csv(path, columns=mapped, dayfirst=True, decimal=","))
    np.testing.assert_array_equal(df["high"].to_numpy(), bars["High"])


# ------------------------------------------------------------------------------ MetaTrader
def metatrader_export(path: Path, stamps: pd.DatetimeIndex, vol: np.ndarray) -> dict:
    """MetaTrader 5's 'Export bars': tab-separated, <DATE> and <TIME>, tick volume, real volume, spread."""
    bars = ohlcv(len(stamps), 8)
    table = pd.DataFrame(
        {"<DATE>": stamps.strftime("%Y.%m.%d"), "<TIME>": stamps.strftime("%H:%M:%S")}
        | {f"<{k.upper()}>": np.round(bars[k], 5) for k in ("Open", "High", "Low", "Close")}
        | {"<TICKVOL>": bars["Volume"], "<VOL>": vol, "<SPREAD>": 12}
    )
    table.to_csv(path, sep="\t", index=False)
    return bars


def test_metatrader_takes_the_volume_column_that_carries_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stamps = fx_hours("2019-01-06", "2019-06-30")
    path = tmp_path / "EURUSD_H1.csv"
    bars = metatrader_export(path, stamps, np.zeros(len(stamps), dtype=int))  # FX: no real volume
    assert (
        path.read_text().splitlines()[0]
        == "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
    )
    with caplog.at_level(logging.INFO, logger="rlpipe.data.columns"):
        df, calendar = load_and_slice(csv(path), test_bars=300)
    np.testing.assert_array_equal(df["volume"].to_numpy(), bars["Volume"].astype(float))
    assert f"{path}: volume read from column '<TICKVOL>' (of ['<VOL>', '<TICKVOL>']; '<VOL>' only zeros)" in (
        caplog.messages
    )
    assert calendar.kind == "24x5"
    traded = np.arange(1, len(stamps) + 1) * 10  # a stock: real volume, preferred to ticks
    metatrader_export(path, stamps, traded)
    np.testing.assert_array_equal(load_data(csv(path))["volume"].to_numpy(), traded.astype(float))


# ------------------------------------------------------------------------------ the options
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"source": "parquet", "sep": ";"}, "data.sep=';' reads CSV files, but data.source=parquet: a "
         "parquet file carries its own column names and numbers; set data.sep=null (map columns with "
         "data.columns)"),
        ({"header_rows": 0}, "data.header_rows=0 (no header row) needs data.names, the file's column names "
         "in order, e.g. data.names=[timestamp,open,high,low,close,volume]"),
        ({"header_rows": -1}, "data.header_rows=-1; expected a count of rows (0, 1, 3...) or null"),
        ({"names": ["t", "open", "t"]}, "data.names=['t', 'open', 't'] names ['t'] twice; give each column "
         "its own name"),
        ({"decimal": ";"}, "data.decimal=';'; expected '.' or ',' (quoted on the command line: "
         "data.decimal=','), or null"),
        ({"sep": "ab"}, "data.sep='ab'; expected one character such as ';' or '\\t' (quoted on the command "
         "line: data.sep=';'), or null to tell it from the first line"),
        ({"sep": ",", "decimal": ","}, "data.decimal=',' is also data.sep; a file needs two marks"),
        ({"encoding": "klingon"}, "data.encoding='klingon' is not a text encoding (e.g. 'utf-8', 'cp1252', "
         "'latin-1'), or null"),
    ],
)  # fmt: skip
def test_csv_options_that_cannot_work_are_refused_before_reading(options: dict, message: str) -> None:
    spec = DataSpec(**{"source": "csv", "path": "never-read.csv", **options})
    assert refusal(spec, ConfigError) == message


def test_a_tab_written_as_backslash_t_on_the_command_line_separates(tmp_path: Path) -> None:
    days = trading_days("2022-01-03", "2022-06-30")
    path = tmp_path / "tabs.txt"
    pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), **ohlcv(len(days))}).to_csv(path, sep="\t", index=False)
    pd.testing.assert_frame_equal(load_data(csv(path, sep="\\t")), load_data(csv(path)))
