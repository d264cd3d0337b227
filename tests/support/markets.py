"""Markets built by hand: valid tables written as CSV or Parquet, vendor-shaped exports (random-walk
columns, FX hours, US trading days, Binance klines, a German spreadsheet), a synthetic market's
regime schedule, and loading them as a job does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pandas.tseries.holiday import USFederalHolidayCalendar

from rlpipe.data.calendar import Calendar
from rlpipe.data.data_config import DataSpec, Segment, SliceSpec
from rlpipe.data.slices import build_slices, resolve
from rlpipe.data.sources import data_calendar, load_data
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.errors import DataError

FORMATS = ["csv", "parquet"]


def valid_table() -> pd.DataFrame:
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


def load_market(source: str, path: str | None = None, **options: Any) -> pd.DataFrame:
    """The market frame of a `DataSpec` of these values, read and checked as a job reads it."""
    return load_data(DataSpec(source=source, path=path, **options))


def load_error(table: pd.DataFrame, fmt: str, tmp_path: Path, **kwargs: Any) -> tuple[Path, str]:
    path = write(table, fmt, tmp_path)
    with pytest.raises(DataError) as err:
        load_market(fmt, path=str(path), **kwargs)
    return path, str(err.value)


FX_BARS_PER_YEAR = 365.25 * 5 / 7 * 24  # 6261.43: every weekday hour


def ohlcv(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random walk's columns, capitalised as vendors write them."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return {
        "Open": open_,
        "High": np.maximum(open_, close) * 1.001,
        "Low": np.minimum(open_, close) * 0.999,
        "Close": close,
        "Volume": rng.integers(100, 1000, n),
    }


def fx_hours(start: str, end: str) -> pd.DatetimeIndex:
    """Hourly FX bars in UTC: Sunday 17:00 to Friday 17:00 New York time (21:00/22:00 UTC)."""
    ny = pd.date_range(start, end, freq="1h", tz="America/New_York")
    day, hour = ny.day_of_week, ny.hour
    keep = (day < 4) | ((day == 4) & (hour < 17)) | ((day == 6) & (hour >= 17))
    utc = ny[keep].tz_convert("UTC")
    return utc[~utc.duplicated()]


def trading_days(start: str, end: str) -> pd.DatetimeIndex:
    """Weekdays without US federal holidays, as naive dates."""
    days = pd.bdate_range(start, end)
    return days[~days.isin(USFederalHolidayCalendar().holidays(start, end))]


def load_and_slice(spec: DataSpec, test_bars: int, folds: int = 3) -> tuple[pd.DataFrame, Calendar]:
    """What a run does first: load, then walk-forward slices checked for leakage."""
    df = load_data(spec)
    slices = build_slices(
        SliceSpec(kind="walk_forward", embargo="7D", folds=folds, test_bars=test_bars),
        df.index,
        df["close"].to_numpy(),
    )
    tests = [w for w in resolve(slices, df.index) if w.slice.role == "test"]
    assert [w.bars for w in tests] == [test_bars] * folds
    assert tests[0].slice.start - slices[0].end > pd.Timedelta("7D")
    return df, data_calendar(spec, df)


def kline_file(path: Path, stamps: pd.DatetimeIndex, seed: int, unit: str) -> dict[str, np.ndarray]:
    """A Binance kline archive: no header, twelve columns, open and close time in `unit` (ms or us)."""
    scale = {"ms": 10**3, "us": 10**6}[unit]
    bars = ohlcv(len(stamps), seed)
    opened = stamps.as_unit("s").asi8 * scale
    rows = [
        f"{t},{o:.8f},{h:.8f},{lo:.8f},{c:.8f},{v:.8f},{t + 3600 * scale - 1},{v * c:.8f},{n},{v / 2:.8f},"
        f"{v * c / 2:.8f},0"
        for n, (t, o, h, lo, c, v) in enumerate(
            zip(opened, bars["Open"], bars["High"], bars["Low"], bars["Close"], bars["Volume"], strict=True)
        )
    ]
    path.write_text("\n".join(rows) + "\n")
    return bars


def european_export(path: Path, days: pd.DatetimeIndex, encoding: str, sep: str = ";") -> dict:
    """A German spreadsheet's CSV: day-first dates, decimal commas, German column names."""
    bars = {k: np.round(v, 2) for k, v in ohlcv(len(days), 7).items()}
    german = ["Eröffnung", "Hoch", "Tief", "Schluss", "Volumen"]
    table = pd.DataFrame({"Datum": days.strftime("%d.%m.%Y")} | dict(zip(german, bars.values(), strict=True)))
    table.to_csv(path, sep=sep, decimal=",", index=False, encoding=encoding, float_format="%.2f")
    return bars


def regime_schedule(
    segments: Sequence[Segment], start: str, freq: str
) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    """The (regime, first bar, last bar) of every segment of a synthetic market, in order: the schedule
    worked out from the declaration alone, to check the market's `regime` column and the slices against."""
    step = pd.Timedelta(freq)
    t = pd.Timestamp(start, tz="UTC")
    out = []
    for seg in segments:
        n = int(pd.Timedelta(days=seg.days) / step)
        out.append((seg.regime, t, t + (n - 1) * step))
        t = t + n * step
    return out
