"""Simulator arrays of a market frame: prices, quotes, bar hours, and the calendar's bars per year."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.calendar import infer_calendar
from rlpipe.data.data_config import DataSpec, Segment
from rlpipe.data.sources import data_calendar
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.envs.market import make_market


def daily_equity() -> pd.DataFrame:
    """Business days (weekends missing), as a validated market frame without quotes."""
    index = pd.bdate_range("2020-01-01", periods=300, tz="UTC", name="timestamp")
    close = np.linspace(100.0, 120.0, len(index))
    return pd.DataFrame(
        {"open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": 1.0}, index=index
    )


def features(df: pd.DataFrame) -> np.ndarray:
    return np.zeros((len(df), 3), dtype=np.float32)


def test_bars_per_year_is_the_one_passed_in() -> None:
    df = daily_equity()
    market = make_market(df, features(df), 2.0, 260.0)
    assert market.bars_per_year == 260.0
    assert market.hours_per_bar == 24.0  # the median step, weekends or not


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (daily_equity, 252.0),  # 365.25 before calendars: every daily Sharpe was off by sqrt(365.25/252)
        (lambda: make_synthetic_market(seed=0, segments=[Segment("bull", 20)]), 8766.0),
    ],
    ids=["business_days", "synthetic_24x7"],
)
def test_without_bars_per_year_the_frame_s_calendar_gives_it(frame, expected: float) -> None:
    df = frame()
    market = make_market(df, features(df))
    assert market.bars_per_year == expected == infer_calendar(df.index).bars_per_year


def test_the_data_spec_calendar_honours_data_bars_per_year() -> None:
    df = daily_equity()
    market = make_market(df, features(df), 2.0, data_calendar(DataSpec(bars_per_year=250), df).bars_per_year)
    assert market.bars_per_year == 250.0


def test_quotes_around_the_close_without_bid_ask_columns() -> None:
    df = daily_equity()
    market = make_market(df, features(df), 10.0, 252.0)
    np.testing.assert_allclose(market.bid, df["close"].to_numpy() * (1 - 5e-4))
    np.testing.assert_allclose(market.ask, df["close"].to_numpy() * (1 + 5e-4))
    assert market.features.dtype == np.float32 and market.features.flags.c_contiguous
    assert market.n_bars == 300 and market.n_features == 3
