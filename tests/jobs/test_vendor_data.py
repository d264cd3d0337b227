"""Vendor-style files through a whole training job, with config only and walk-forward slices.

Each file is built here the way a vendor writes it (tests/data/test_readers.py has the loaders'
own tests); each job must finish, record the calendar's bars per year, and annualise every Sharpe
ratio with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.cli.compose import train_job
from rlpipe.evaluation import metrics as mx
from rlpipe.jobs.train_job import run_train
from rlpipe.tracking import queries
from tests.support.markets import FX_BARS_PER_YEAR, fx_hours, ohlcv, trading_days


def day_first_fx(tmp: Path) -> tuple[Path, list[str]]:
    stamps = fx_hours("2017-01-01", "2017-12-31")
    path = tmp / "EURUSD_Candlestick_1_Hour_BID.csv"
    table = pd.DataFrame({"Gmt time": stamps.strftime("%d.%m.%Y %H:%M:%S.000"), **ohlcv(len(stamps))})
    table.to_csv(path, index=False)
    return path, ["data.dayfirst=true", "slices.test_bars=500"]


def yahoo_daily(tmp: Path) -> tuple[Path, list[str]]:
    days = trading_days("2015-01-02", "2019-12-31")
    table = pd.DataFrame({"Date": days.strftime("%Y-%m-%d"), **ohlcv(len(days), 1)})
    table.insert(5, "Adj Close", table["Close"] * np.linspace(0.8, 1.0, len(days)))
    path = tmp / "AAPL.csv"
    table.to_csv(path, index=False)
    return path, ["data.adj_close=use", "slices.test_bars=60"]


def epoch_ms_crypto(tmp: Path) -> tuple[Path, list[str]]:
    stamps = pd.date_range("2022-01-01", periods=24 * 120, freq="1h", tz="UTC")
    ms = stamps.as_unit("ms").asi8
    path = tmp / "BTCUSDT-1h.parquet"
    pd.DataFrame({"open_time": ms, **ohlcv(len(stamps), 3)}).to_parquet(path, index=False)
    return path, ["data=parquet", "slices.test_bars=336"]


def naive_local_time(tmp: Path) -> tuple[Path, list[str]]:
    stamps = pd.date_range("2021-03-01", "2021-11-30 23:00", freq="1h", tz="UTC")
    local = stamps.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H:%M")
    path = tmp / "dax_local.csv"
    pd.DataFrame({"DateTime": local, **ohlcv(len(stamps), 4)}).to_csv(path, index=False)
    return path, ["data.timezone=Europe/Berlin", "slices.test_bars=168"]


@pytest.mark.parametrize(
    ("build", "kind", "bars_per_year"),
    [
        (day_first_fx, "24x5", FX_BARS_PER_YEAR),
        (yahoo_daily, "business_days", 252.0),
        (epoch_ms_crypto, "24x7", 8766.0),
        (naive_local_time, "24x7", 8766.0),
    ],
    ids=["day-first-fx", "yahoo-daily", "epoch-ms", "naive-local"],
)
def test_vendor_file_trains_walk_forward_with_its_calendar(
    tmp_path, compose_cfg, tracking_uri, build, kind, bars_per_year
):
    path, options = build(tmp_path)
    data = [] if "data=parquet" in options else ["data=csv"]
    cfg = compose_cfg(
        *data, f"data.path={path}", "slices=walk_forward", "slices.folds=3", "device=cpu", *options
    )
    result = run_train(train_job(cfg))
    client = MlflowClient(tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["data/bars_per_year"] == pytest.approx(bars_per_year)
    assert run.data.tags["rlpipe.calendar"].startswith(f"{kind} calendar")
    assert run.data.metrics["test/slices"] == 3.0
    # every Sharpe ratio is annualised with the calendar's bars per year
    curves = queries.equity_curves(client, result.run_id)
    fold = curves[(curves["slice"] == "fold1") & (curves["policy"] == "buy_and_hold")]["equity"].to_numpy()
    expected = mx.sharpe(mx.returns(fold), bars_per_year)
    assert run.data.metrics["slice/fold1/baseline_buy_and_hold_total"] == pytest.approx(fold[-1] - 1.0)
    report = queries.load_json(client, result.run_id, "report/report.json")
    bh = next(s for s in report["slices"] if s["slice"] == "fold1" and s["policy"] == "buy_and_hold")
    assert bh["sharpe"] == pytest.approx(expected)
