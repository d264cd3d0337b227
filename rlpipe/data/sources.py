"""Market data sources: the embedded synthetic market, CSV and Parquet files (one or several), read
as a `DataSpec` (config group `data`, `rlpipe.data.data_config`) says."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from itertools import pairwise

import pandas as pd

from rlpipe.data.calendar import Calendar, infer_calendar
from rlpipe.data.data_config import DataSpec
from rlpipe.data.readers import read_frames
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, check_contract, check_gaps
from rlpipe.errors import ConfigError, DataError

_SYNTHETIC_KEYS = (
    "start",
    "freq",
    "sigma",
    "trend",
    "mean_reversion",
    "signal_strength",
    "signal_persistence",
)


def data_digest(df: pd.DataFrame) -> str:
    """A short content hash of the market frame (index and price columns), for reproducibility."""
    cols = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in df.columns]
    h = hashlib.sha256(df.index.as_unit("ns").asi8.tobytes())  # same bars, same digest, any unit
    h.update(df[cols].to_numpy(dtype=float).tobytes())
    return h.hexdigest()[:16]


def load_data(spec: DataSpec) -> pd.DataFrame:
    """Load and validate the market frame `spec` describes.

    Gaps are checked in the trading time of `data_calendar(spec, df)`: in each file, and between files.
    """
    check_options(spec)
    if spec.source == "synthetic":
        df = _synthetic(spec)
        check_contract(df, "synthetic market")
        parts = [(df, "synthetic market")]
    elif spec.source in ("csv", "parquet"):
        parts = read_frames(spec.paths(), spec.source, spec.file_format())
        df = parts[0][0] if len(parts) == 1 else pd.concat([frame for frame, _ in parts])
    else:
        raise DataError(f"data.source={spec.source!r}; expected synthetic, csv or parquet")
    if spec.end is not None:
        df, parts = _until(spec, df, parts)
    calendar, inferred = data_calendar(spec, df), spec.max_gap is None
    for frame, name in parts:
        check_gaps(frame.index, name, calendar, inferred)
    for (a, name_a), (b, name_b) in pairwise(parts):
        joint = pd.DatetimeIndex([a.index[-1], b.index[0]])
        check_gaps(joint, f"{name_a} and {name_b}", calendar, inferred)
    return df


def _until(
    spec: DataSpec, df: pd.DataFrame, parts: list[tuple[pd.DataFrame, str]]
) -> tuple[pd.DataFrame, list[tuple[pd.DataFrame, str]]]:
    """The frame and its files cut at `data.end` (inclusive)."""
    try:
        end = pd.Timestamp(spec.end)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data.end={spec.end!r} is not a timestamp (e.g. '2022-06-30 23:00')") from exc
    end = end.tz_localize(spec.timezone) if end.tzinfo is None else end
    cut = [(frame[frame.index <= end], name) for frame, name in parts]
    cut = [(frame, name) for frame, name in cut if len(frame)]
    if not cut:
        first = df.index[0]
        raise DataError(f"data.end={spec.end}: no bar is at or before it (the data starts at {first})")
    return df[df.index <= end], cut


def data_calendar(spec: DataSpec, df: pd.DataFrame) -> Calendar:
    """The calendar of the frame's stamps, with data.max_gap and data.bars_per_year when set."""
    calendar = infer_calendar(df.index)
    max_gap = _max_gap(spec)
    if max_gap is not None:
        calendar = replace(calendar, max_gap=max_gap)
    if spec.bars_per_year is not None:
        calendar = replace(calendar, bars_per_year=float(spec.bars_per_year))
    return calendar


def check_options(spec: DataSpec) -> None:
    """Refuse reading options that cannot work, naming the key, before any file is read."""
    try:
        pd.Timestamp("2000-01-01").tz_localize(spec.timezone)
    except Exception as exc:  # zoneinfo, dateutil and pytz each raise their own
        raise ConfigError(
            f"data.timezone={spec.timezone!r} is not a time zone (e.g. 'UTC', 'Europe/London')"
        ) from exc
    if not isinstance(spec.columns, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in spec.columns.items()
    ):
        raise ConfigError(f"data.columns={spec.columns!r}; expected a mapping file column -> ours")
    spec.file_format().check(spec.source)
    if spec.bars_per_year is not None and not float(spec.bars_per_year) > 0:
        raise ConfigError(f"data.bars_per_year={spec.bars_per_year}; must be positive (or null)")
    _max_gap(spec)


def _max_gap(spec: DataSpec) -> pd.Timedelta | None:
    if spec.max_gap is None:
        return None
    try:
        gap = pd.Timedelta(spec.max_gap)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"data.max_gap={spec.max_gap!r} is not a duration (e.g. '6h', '3D')") from exc
    if gap <= pd.Timedelta(0):
        raise ConfigError(f"data.max_gap={spec.max_gap!r}; must be positive (or null)")
    return gap


def _synthetic(spec: DataSpec) -> pd.DataFrame:
    if not spec.segments:
        raise DataError("data.segments is empty: the synthetic market needs a regime schedule")
    options = {k: getattr(spec, k) for k in _SYNTHETIC_KEYS if getattr(spec, k) is not None}
    return make_synthetic_market(
        seed=spec.seed, segments=list(spec.segments), spread_bps=spec.spread_bps, **options
    )
