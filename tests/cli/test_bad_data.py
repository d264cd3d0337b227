"""Each bad file of the README's list, through the real CLI in one multirun: every job exits with a
user error (status 2), one line naming the file and what is wrong, and no traceback. Vendor files
that need an option say which; a user's config file reads names the command line cannot write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from tests.support.markets import european_export, kline_file, trading_days
from tests.support.project import cli


def bars(n: int = 24 * 60) -> pd.DataFrame:
    """Hourly OHLCV bars that pass every check."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    frame = pd.DataFrame(
        {"open": close, "high": close * 1.002, "low": close * 0.998, "close": close, "volume": 1.0},
        index=pd.date_range("2022-01-01", periods=n, freq="1h", tz="UTC", name="timestamp"),
    )
    return frame


def bad_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the start of what the error says after the file name)."""
    base = bars()
    cases: dict[str, tuple[pd.DataFrame, str]] = {}
    swapped = base.index.to_numpy().copy()
    swapped[[100, 101]] = swapped[[101, 100]]
    cases["unsorted"] = (
        base.set_axis(pd.DatetimeIndex(swapped, name="timestamp")),
        "timestamps not strictly",
    )
    dup = base.index.to_numpy().copy()
    dup[101] = dup[100]
    cases["duplicate"] = (base.set_axis(pd.DatetimeIndex(dup, name="timestamp")), "duplicate timestamp")
    cases["nan"] = (
        base.assign(close=base["close"].where(base.index != base.index[50])),
        "column 'close' has NaN",
    )
    cases["negative"] = (
        base.assign(low=base["low"].mask(base.index == base.index[60], -1.0)),
        "column 'low'",
    )
    cases["high_below_low"] = (
        base.assign(high=base["high"].mask(base.index == base.index[70], base["low"] * 0.5)),
        "column 'high' is below 'low'",
    )
    cases["no_volume"] = (base.drop(columns="volume"), "missing column(s) ['volume']")
    cases["hole"] = (base.drop(base.index[200 : 200 + 24 * 30]), "gap of")
    out = {}
    for name, (frame, says) in cases.items():
        path = tmp / f"{name}.csv"
        frame.to_csv(path)
        out[name] = (path, says)
    kline_file(tmp / "BTCUSDT-1h-2025-01.csv", base.index, 0, "us")
    out["headerless"] = (
        tmp / "BTCUSDT-1h-2025-01.csv",
        "holds numbers, not column names: the file has no header",
    )
    european_export(tmp / "dax.csv", trading_days("2022-01-03", "2023-12-29"), "cp1252")
    out["german"] = (
        tmp / "dax.csv",
        "'Eröffnung' is not plain ASCII, so it cannot be written on the command",
    )
    base.to_csv(tmp / "decimal_comma.csv", decimal=",")  # quoted: "100,025"
    out["decimal_comma"] = (tmp / "decimal_comma.csv", "column 'open' (open) has '100,025")
    return out


def test_every_bad_file_is_one_clear_line_and_exit_status_2(tmp_path):
    files = bad_files(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    paths = ",".join(str(p) for p, _ in files.values())
    proc = cli(
        "rlpipe.train", "-m", f"hydra.sweep.dir={tmp_path}/multirun", "experiment=smoke", "data=csv",
        f"data.path={paths}", "slices=walk_forward", "slices.test_bars=100", f"tracking.uri={uri}",
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert "Traceback" not in out
    lines = [x for x in proc.stderr.splitlines() if x.startswith("error: job")]
    assert len(lines) == len(files)
    for path, says in files.values():
        (line,) = [x for x in lines if f"{path}:" in x]
        assert says in line, line
    assert "data.names=[timestamp,open,high,low,close,volume,...] (data=binance" in out
    assert "map it in a config file (conf/data/csv.yaml shows how)" in out
    assert "set data.decimal=',' to read decimal commas" in out
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("rlpipe").experiment_id], "tags.`rlpipe.kind` = 'job'"
    )
    assert sorted(r.info.status for r in runs) == ["FAILED"] * len(files)  # recorded, with their tracebacks
    assert client.search_model_versions("name='rlpipe-policy'") == []  # nothing was trained


def test_a_config_file_maps_column_names_the_command_line_cannot_write(tmp_path):
    """The way the refusal of the German export names: a data preset of the user's own (--config-dir)."""
    european_export(tmp_path / "dax.csv", trading_days("2015-01-02", "2019-12-31"), "cp1252")
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "boerse.yaml").write_text(
        "defaults:\n  - csv\n  - _self_\n"
        f"path: {tmp_path / 'dax.csv'}\n"
        "dayfirst: true\n"
        "columns: {Datum: timestamp, Eröffnung: open, Hoch: high, Tief: low, Schluss: close,\n"
        "  Volumen: volume}\n",
        encoding="utf-8",
    )
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli(
        "rlpipe.train", "--config-dir", str(tmp_path / "conf"), "data=boerse", "experiment=smoke",
        "slices=walk_forward", "slices.folds=3", "slices.test_bars=60", "device=cpu", f"tracking.uri={uri}",
        f"hydra.run.dir={tmp_path}/run", f"checkpoint.dir={tmp_path}/checkpoints",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(uri)
    (run,) = client.search_runs(
        [client.get_experiment_by_name("rlpipe").experiment_id], "tags.`rlpipe.kind` = 'job'"
    )
    assert run.info.status == "FINISHED"
    assert run.data.params["data.columns.Eröffnung"] == "open" and run.data.params["data.dayfirst"] == "True"
    assert run.data.metrics["data/bars_per_year"] == 252.0
    assert run.data.params["data.path"] == str(tmp_path / "dax.csv")
