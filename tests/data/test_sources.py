"""Market data sources: CSV and Parquet files, raw tables, the synthetic market, the `data` spec, the digest.

Loader errors name the file, the column or setting, and what to do; the validation rules themselves
are tested in data/test_validation.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rlpipe.data.data_config import DataSpec, Segment
from rlpipe.data.readers import table_to_frame
from rlpipe.data.sources import check_options, data_calendar, data_digest, load_data
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.data.validation import check_gaps
from rlpipe.errors import ConfigError, DataError
from tests.support.markets import FORMATS, load_error, load_market, stamp, valid_table, write
from tests.support.project import CONF

COLUMNS = ["open", "high", "low", "close", "volume", "bid", "ask"]
NO_STAMPS = (
    "set data.timestamp_column, or map one with data.columns; Date, Time, Datetime and Timestamp "
    "are found by themselves"
)


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return valid_table()


def frame_from_table(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """A table in memory (a timestamp column, or a DatetimeIndex) read and checked as a file is."""
    spec = DataSpec()
    check_options(spec)
    df = table_to_frame(raw, source, spec.file_format())
    check_gaps(df.index, source, data_calendar(spec, df), inferred=spec.max_gap is None)
    return df


# ------------------------------------------------------------------------------ files
@pytest.mark.parametrize("fmt", FORMATS)
def test_valid_file_loads_with_utc_index_and_float_columns(
    good: pd.DataFrame, fmt: str, tmp_path: Path
) -> None:
    path = write(good, fmt, tmp_path)
    df = load_market(fmt, path=str(path), max_gap="1h")
    assert list(df.columns) == COLUMNS
    assert str(df.index.tz) == "UTC"
    assert df.index.is_monotonic_increasing and df.index.is_unique
    assert all(df[c].dtype == np.float64 for c in df.columns)
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")
    np.testing.assert_allclose(df["close"].to_numpy(), good["close"].to_numpy(), rtol=1e-15)
    assert df.index.name == "timestamp" and len(df) == len(good) == 48


def test_column_names_are_case_insensitive_and_extra_columns_dropped(
    good: pd.DataFrame, tmp_path: Path
) -> None:
    table = good.rename(columns={"close": "Close", "volume": "VOLUME"}).assign(note="x")
    df = load_market("csv", path=str(write(table, "csv", tmp_path)))
    assert list(df.columns) == ["open", "high", "low", "close", "volume", "bid", "ask"]
    np.testing.assert_allclose(df["close"].to_numpy(), good["close"].to_numpy(), rtol=1e-15)
    np.testing.assert_allclose(df["volume"].to_numpy(), good["volume"].to_numpy(), rtol=1e-15)


def test_custom_timestamp_column(good: pd.DataFrame, tmp_path: Path) -> None:
    path = write(good.rename(columns={"timestamp": "time"}), "csv", tmp_path)
    df = load_market("csv", path=str(path), timestamp_column="time")
    assert len(df) == len(good)
    assert df.index[-1] == pd.Timestamp(good["timestamp"].iloc[-1])
    assert df.index.name == "timestamp" and "time" not in df.columns


def test_non_utc_offsets_in_a_file_are_converted_to_utc(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.assign(timestamp=good["timestamp"].dt.tz_convert("Europe/Berlin"))
    path = write(table, "csv", tmp_path)
    assert "+01:00" in path.read_text().splitlines()[1]  # the file really holds local stamps
    df = load_market("csv", path=str(path))
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")


def test_missing_bid_ask_is_allowed(good: pd.DataFrame, tmp_path: Path) -> None:
    df = load_market("csv", path=str(write(good.drop(columns=["bid", "ask"]), "csv", tmp_path)))
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert len(df) == len(good)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("drop", [["volume"], ["high", "low"]])
def test_missing_columns_are_named(good: pd.DataFrame, fmt: str, drop: list[str], tmp_path: Path) -> None:
    path, msg = load_error(good.drop(columns=drop), fmt, tmp_path)
    assert str(path) in msg
    assert f"missing column(s) {drop}" in msg
    found = [c for c in good.columns if c not in drop]  # as the file names them, stamps included
    assert msg == (
        f"{path}: missing column(s) {drop}; found {found}; map a column of another name with "
        "data.columns (file column -> ours, e.g. {Px_Last: close})"
    )


# ------------------------------------------------------------------------------ timestamps
def test_unparseable_stamp_names_file_column_and_value(good: pd.DataFrame, tmp_path: Path) -> None:
    table = good.assign(timestamp=good["timestamp"].astype(str))
    table.loc[9, "timestamp"] = "not a date"
    path, msg = load_error(table, "csv", tmp_path)
    assert str(path) in msg
    assert "column 'timestamp'" in msg
    assert "not a date" in msg
    assert msg.startswith(
        f"{path}: column 'timestamp' has an unparseable timestamp 'not a date' in data row 10; "
    )
    assert "data.timestamp_format" in msg and "data.dayfirst" in msg


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
    after = f" (after {stamp(good, row - 1)})" if row else ""
    assert msg == f"{path}: column 'timestamp' has a missing timestamp in data row {row + 1}{after}"


def test_missing_timestamp_column_names_the_setting(good: pd.DataFrame, tmp_path: Path) -> None:
    path, msg = load_error(good.rename(columns={"timestamp": "when"}), "csv", tmp_path)
    assert str(path) in msg
    assert "'timestamp'" in msg and "data.timestamp_column" in msg
    assert msg == f"{path}: no timestamp column 'timestamp' ({NO_STAMPS}); columns are {['when', *COLUMNS]}"


# ------------------------------------------------------------------------------ raw tables
def test_a_table_indexed_by_naive_stamps_is_read_as_utc(good: pd.DataFrame) -> None:
    table = good.set_index("timestamp").tz_localize(None)
    df = frame_from_table(table, "table")
    assert str(df.index.tz) == "UTC" and df.index.name == "timestamp"
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")
    np.testing.assert_array_equal(df["close"].to_numpy(), good["close"].to_numpy())


def test_a_table_indexed_by_local_stamps_is_converted_to_utc(good: pd.DataFrame) -> None:
    table = good.set_index("timestamp").tz_convert("America/New_York")
    df = frame_from_table(table, "table")
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp("2021-01-01 00:00", tz="UTC")


def test_integer_columns_of_a_table_become_floats(good: pd.DataFrame) -> None:
    table = good.assign(volume=np.arange(1, len(good) + 1))
    df = frame_from_table(table, "table")
    assert df["volume"].dtype == np.float64
    np.testing.assert_array_equal(df["volume"].to_numpy(), np.arange(1.0, len(good) + 1))


def test_a_table_without_stamps_is_refused_with_its_columns_named(good: pd.DataFrame) -> None:
    with pytest.raises(DataError) as err:
        frame_from_table(good.drop(columns="timestamp"), "table")
    assert str(err.value) == f"table: no timestamp column 'timestamp' ({NO_STAMPS}); columns are {COLUMNS}"


# ------------------------------------------------------------------------------ sources
@pytest.mark.parametrize("fmt", FORMATS)
def test_nonexistent_path_is_named(fmt: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / f"bars.{fmt}"
    with pytest.raises(DataError) as err:
        load_market(fmt, path=str(missing))
    assert str(missing) in str(err.value)
    assert "no such file" in str(err.value)
    assert str(err.value) == f"data.path={missing}: no such file (resolved to {missing.resolve()})"


def test_unreadable_parquet_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"definitely not parquet")
    with pytest.raises(DataError) as err:
        load_market("parquet", path=str(path))
    assert str(path) in str(err.value) and "cannot be read as parquet" in str(err.value)
    assert str(err.value).startswith(f"{path}: cannot be read as parquet: ")
    assert err.value.__cause__ is not None  # the reader's own error is kept


def test_unknown_source_and_missing_path_name_the_setting() -> None:
    with pytest.raises(DataError, match=r"data\.source='excel'"):
        load_market("excel", path="x.xlsx")
    with pytest.raises(DataError, match=r"needs data\.path"):
        load_market("csv")
    with pytest.raises(DataError) as err:
        load_market("excel", path="x.xlsx")
    assert str(err.value) == "data.source='excel'; expected synthetic, csv or parquet"
    with pytest.raises(DataError) as err:
        load_market("csv")
    assert str(err.value) == "data.source=csv needs data.path (the file to read)"


def test_the_synthetic_source_returns_the_seeded_frame() -> None:
    segs = [{"regime": "bull", "days": 5}, {"regime": "bear", "days": 5}]
    loaded = load_market("synthetic", seed=4, segments=segs, max_gap="1h", signal_strength=0.2)
    direct = make_synthetic_market(seed=4, segments=segs, signal_strength=0.2)
    pd.testing.assert_frame_equal(loaded, direct, check_exact=True)


# ------------------------------------------------------------------------------ the data spec
def test_spec_loads_the_synthetic_market_it_describes() -> None:
    segments = [Segment("bull", 3), Segment("sideways", 2)]
    values = {"seed": 5, "start": "2022-02-02", "freq": "2h", "sigma": 0.01, "trend": 1e-3,
              "mean_reversion": 0.05, "signal_strength": 0.3, "signal_persistence": 0.5,
              "spread_bps": 8.0}  # fmt: skip
    spec = DataSpec(segments=segments, **values)
    direct = make_synthetic_market(segments=segments, **values)
    pd.testing.assert_frame_equal(load_data(spec), direct, check_exact=True)
    np.testing.assert_allclose(load_data(spec).eval("ask / bid").to_numpy(), (1 + 4e-4) / (1 - 4e-4))


def test_unset_synthetic_fields_of_the_spec_leave_the_generator_defaults() -> None:
    segments = [Segment("bear", 2)]
    pd.testing.assert_frame_equal(
        load_data(DataSpec(seed=1, segments=segments)),
        make_synthetic_market(seed=1, segments=segments),
        check_exact=True,
    )


def test_spec_without_segments_is_refused_for_the_synthetic_market() -> None:
    with pytest.raises(DataError) as err:
        load_data(DataSpec(source="synthetic"))
    assert str(err.value) == "data.segments is empty: the synthetic market needs a regime schedule"


def test_spec_reads_a_file_with_its_own_timestamp_column_and_gap(good: pd.DataFrame, tmp_path: Path) -> None:
    path = write(good.rename(columns={"timestamp": "t"}).drop(index=[5]), "parquet", tmp_path)
    spec = DataSpec(source="parquet", path=str(path), timestamp_column="t", max_gap="2h")
    assert len(load_data(spec)) == len(good) - 1
    with pytest.raises(DataError, match=r"gap of 0 days 02:00:00 .* exceeds the tolerance data\.max_gap"):
        load_data(DataSpec(source="parquet", path=str(path), timestamp_column="t", max_gap="1h"))


def test_the_default_synthetic_market_is_unchanged() -> None:
    """conf/data/synthetic.yaml gives the very bars it gave before calendars and vendor files."""
    values = yaml.safe_load((CONF / "data/synthetic.yaml").read_text())
    values.pop("_target_")
    spec = DataSpec(**values)
    df = load_data(spec)
    assert data_digest(df) == "924e83dc6f340c9a" and len(df) == 19_080
    assert data_calendar(spec, df).bars_per_year == 8766.0


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


def test_data_digest_hashes_nanosecond_stamps_then_the_price_columns() -> None:
    index = pd.DatetimeIndex(["2021-01-01 00:00", "2021-01-01 01:00"], tz="UTC").as_unit("s")
    values = {
        "open": [1.0, 2.0],
        "high": [2.0, 3.0],
        "low": [0.5, 1.5],
        "close": [1.5, 2.5],
        "volume": [7.0, 8.0],
    }
    df = pd.DataFrame({**values, "regime": ["bull", "bull"]}, index=index)
    stamps_ns = np.array([1609459200, 1609462800], dtype=np.int64) * 10**9
    expected = hashlib.sha256(stamps_ns.tobytes())
    expected.update(np.column_stack(list(values.values())).tobytes())
    assert data_digest(df) == expected.hexdigest()[:16]  # the regime column is not part of it


def test_data_end_drops_every_later_bar_as_the_data_is_read(good: pd.DataFrame, tmp_path: Path) -> None:
    path = write(good, "csv", tmp_path)
    end = pd.Timestamp(good["timestamp"].iloc[len(good) // 2]).tz_convert("UTC")
    cut = load_data(DataSpec(source="csv", path=str(path), end=str(end), max_gap="1h"))
    assert cut.index[-1] == end and len(cut) == len(good) // 2 + 1
    with pytest.raises(ConfigError, match=r"data.end='soon' is not a timestamp"):
        load_data(DataSpec(source="csv", path=str(path), end="soon"))
    with pytest.raises(DataError, match=r"data.end=1999-01-01: no bar is at or before it"):
        load_data(DataSpec(source="csv", path=str(path), end="1999-01-01"))
