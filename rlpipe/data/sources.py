"""Market data sources: the embedded synthetic market, CSV and Parquet files (one or several)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import pandas as pd

from rlpipe.data.calendar import Calendar, infer_calendar
from rlpipe.data.file_format import FileFormat
from rlpipe.data.readers import read_frames, table_to_frame
from rlpipe.data.synthetic import Segment, make_synthetic_market
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


def load_market(source: str, path: str | list[str] | None = None, **options: Any) -> pd.DataFrame:
    """Load and validate market data: `DataSpec(source=source, path=path, **options).load()`."""
    return DataSpec(source=source, path=path, **options).load()


def frame_from_table(raw: pd.DataFrame, source: str, spec: DataSpec | None = None) -> pd.DataFrame:
    """A raw table (a timestamp column, or a DatetimeIndex) as a validated market frame.

    Args:
        raw: the table, with vendor column names if need be.
        source: named in every error.
        spec: how to read it (timestamp format, zone, column mapping, gap tolerance); None: DataSpec().
    """
    spec = spec or DataSpec()
    spec.check_options()
    df = table_to_frame(raw, source, spec.file_format())
    check_gaps(df.index, source, spec.calendar(df), inferred=spec.max_gap is None)
    return df


def data_digest(df: pd.DataFrame) -> str:
    """A short content hash of the market frame (index and price columns), for reproducibility."""
    cols = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in df.columns]
    h = hashlib.sha256(df.index.as_unit("ns").asi8.tobytes())  # same bars, same digest, any unit
    h.update(df[cols].to_numpy(dtype=float).tobytes())
    return h.hexdigest()[:16]


@dataclass
class DataSpec:
    """Market data source (config group `data`)."""

    source: str = "synthetic"
    """synthetic, csv or parquet."""
    path: str | list[str] | None = None
    """File to read for csv/parquet; a list: consecutive chunks of one instrument, joined in time."""
    symbol: str | None = None
    """Put in for `{symbol}` in data.path, so that `-m data.symbol=EURUSD,GBPUSD` sweeps instruments;
    also picks the instrument of a CSV whose Ticker header row (yfinance) holds several."""
    timestamp_column: str = "timestamp"
    """Column of bar timestamps; when absent, Date, Time, Datetime, Timestamp... are found by name."""
    timestamp_format: str | None = None
    """strftime pattern of the timestamps, e.g. '%d.%m.%Y %H:%M:%S.%f' (None: inferred)."""
    dayfirst: bool = False
    """Read ambiguous dates day-first (13.01.2017) when no timestamp_format is given."""
    timezone: str = "UTC"
    """Time zone of timestamps written without an offset (those with one keep it)."""
    timestamp_unit: str | None = None
    """Epoch unit of numeric timestamps: s, ms, us or ns (None: told from each one's size, so files in
    different units, such as Binance's ms until 2024 and us from 2025, read alike)."""
    columns: dict[str, str] = field(default_factory=dict)
    """File column -> ours (timestamp, open, high, low, close, volume, bid, ask, adj_close)."""
    header_rows: int | None = None
    """CSV: rows before the first bar (None: 0 when the first row holds numbers, 3 for yfinance, else 1)."""
    names: list[str] | None = None
    """CSV: the column names in file order, for a file without a header row or in place of its own."""
    sep: str | None = None
    """CSV: the field separator, e.g. ';' or '\\t' (None: the most frequent of , ; tab | in line 1)."""
    decimal: str | None = None
    """CSV: the decimal mark, '.' or ',' (None: ',' in a file not separated by commas where a whole
    column is written so, else '.')."""
    encoding: str | None = None
    """CSV: the text encoding, e.g. 'cp1252' (None: UTF-8, else Windows-1252 as spreadsheets write)."""
    adj_close: str = "ignore"
    """An adjusted-close column: 'ignore' it, or 'use' it to rescale prices by adj_close / close."""
    max_gap: str | None = None
    """Largest gap between bars in trading time (weekends, nights not counted), e.g. '6h' (None: inferred)."""
    bars_per_year: float | None = None
    """Bars per year for every annualised figure (None: from the data's calendar)."""
    spread_bps: float = 2.0
    """Full spread assumed around the close when the data has no bid/ask columns."""
    seed: int = 0
    """Synthetic: the market's own seed (independent of the agent's)."""
    segments: list[Segment] = field(default_factory=list)
    """Synthetic: regime schedule, a list of {regime, days}."""
    start: str | None = None
    """Synthetic: first bar timestamp."""
    freq: str | None = None
    """Synthetic: bar length."""
    sigma: float | None = None
    """Synthetic: per-bar volatility."""
    trend: float | None = None
    """Synthetic: per-bar drift of bull (+) and bear (-) segments."""
    mean_reversion: float | None = None
    """Synthetic: pull of sideways segments back to their start level."""
    signal_strength: float | None = None
    """Synthetic: planted learnable drift in units of sigma (0: pure regime noise)."""
    signal_persistence: float | None = None
    """Synthetic: AR(1) coefficient of the planted signal."""
    end: str | None = None
    """The last bar to use (a timestamp, inclusive): later bars are dropped as the data is read, so
    nothing after it reaches features, slices, training or selection (an as-of date). None: all."""

    def load(self) -> pd.DataFrame:
        """Load and validate the market frame this spec describes.

        Gaps are checked in the trading time of `calendar(df)`: in each file, and between files.
        """
        self.check_options()
        if self.source == "synthetic":
            df = self._synthetic()
            check_contract(df, "synthetic market")
            parts = [(df, "synthetic market")]
        elif self.source in ("csv", "parquet"):
            parts = read_frames(self.paths(), self.source, self.file_format())
            df = parts[0][0] if len(parts) == 1 else pd.concat([frame for frame, _ in parts])
        else:
            raise DataError(f"data.source={self.source!r}; expected synthetic, csv or parquet")
        if self.end is not None:
            df, parts = self._until(df, parts)
        calendar, inferred = self.calendar(df), self.max_gap is None
        for frame, name in parts:
            check_gaps(frame.index, name, calendar, inferred)
        for (a, name_a), (b, name_b) in pairwise(parts):
            joint = pd.DatetimeIndex([a.index[-1], b.index[0]])
            check_gaps(joint, f"{name_a} and {name_b}", calendar, inferred)
        return df

    def _until(
        self, df: pd.DataFrame, parts: list[tuple[pd.DataFrame, str]]
    ) -> tuple[pd.DataFrame, list[tuple[pd.DataFrame, str]]]:
        """The frame and its files cut at `data.end` (inclusive)."""
        try:
            end = pd.Timestamp(self.end)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"data.end={self.end!r} is not a timestamp (e.g. '2022-06-30 23:00')") from exc
        end = end.tz_localize(self.timezone) if end.tzinfo is None else end
        cut = [(frame[frame.index <= end], name) for frame, name in parts]
        cut = [(frame, name) for frame, name in cut if len(frame)]
        if not cut:
            first = df.index[0]
            raise DataError(f"data.end={self.end}: no bar is at or before it (the data starts at {first})")
        return df[df.index <= end], cut

    def calendar(self, df: pd.DataFrame) -> Calendar:
        """The calendar of the frame's stamps, with data.max_gap and data.bars_per_year when set."""
        calendar = infer_calendar(df.index)
        max_gap = self._max_gap()
        if max_gap is not None:
            calendar = replace(calendar, max_gap=max_gap)
        if self.bars_per_year is not None:
            calendar = replace(calendar, bars_per_year=float(self.bars_per_year))
        return calendar

    def paths(self) -> list[str]:
        """The file(s) to read: data.path, with data.symbol put in for `{symbol}`."""
        if not self.path:
            raise DataError(f"data.source={self.source} needs data.path (the file to read)")
        paths = [self.path] if isinstance(self.path, str) else list(self.path)
        if not all(isinstance(p, str) and p for p in paths):
            raise ConfigError(f"data.path={self.path!r}; expected a file path or a list of file paths")
        placeholder = any("{symbol}" in p for p in paths)
        if placeholder and not self.symbol:
            raise ConfigError(
                f"data.path={self.path!r} has a {{symbol}} placeholder but data.symbol is not set; "
                "set data.symbol (or sweep it: -m data.symbol=EURUSD,GBPUSD)"
            )
        if self.symbol and not placeholder and self.source != "csv":  # a CSV's Ticker row may hold it
            raise ConfigError(
                f"data.symbol={self.symbol!r}, but data.path={self.path!r} has no {{symbol}} "
                "placeholder, so every symbol would read the same file; write it as e.g. 'bars/{symbol}.csv'"
            )
        return [p.replace("{symbol}", self.symbol or "") for p in paths]

    def file_format(self) -> FileFormat:
        """How the file(s) write their columns and timestamps."""
        return FileFormat(
            timestamp_column=self.timestamp_column,
            timestamp_format=self.timestamp_format,
            dayfirst=self.dayfirst,
            timezone=self.timezone,
            timestamp_unit=self.timestamp_unit,
            columns=dict(self.columns),
            adj_close=self.adj_close,
            header_rows=self.header_rows,
            names=None if self.names is None else list(self.names),
            sep=self.sep,
            decimal=self.decimal,
            encoding=self.encoding,
            symbol=self.symbol,
            symbol_in_path="{symbol}" in str(self.path),
        )

    def check_options(self) -> None:
        """Refuse reading options that cannot work, naming the key, before any file is read."""
        try:
            pd.Timestamp("2000-01-01").tz_localize(self.timezone)
        except Exception as exc:  # zoneinfo, dateutil and pytz each raise their own
            raise ConfigError(
                f"data.timezone={self.timezone!r} is not a time zone (e.g. 'UTC', 'Europe/London')"
            ) from exc
        if not isinstance(self.columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.columns.items()
        ):
            raise ConfigError(f"data.columns={self.columns!r}; expected a mapping file column -> ours")
        self.file_format().check(self.source)
        if self.bars_per_year is not None and not float(self.bars_per_year) > 0:
            raise ConfigError(f"data.bars_per_year={self.bars_per_year}; must be positive (or null)")
        self._max_gap()

    def _max_gap(self) -> pd.Timedelta | None:
        if self.max_gap is None:
            return None
        try:
            gap = pd.Timedelta(self.max_gap)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"data.max_gap={self.max_gap!r} is not a duration (e.g. '6h', '3D')") from exc
        if gap <= pd.Timedelta(0):
            raise ConfigError(f"data.max_gap={self.max_gap!r}; must be positive (or null)")
        return gap

    def _synthetic(self) -> pd.DataFrame:
        if not self.segments:
            raise DataError("data.segments is empty: the synthetic market needs a regime schedule")
        options = {k: getattr(self, k) for k in _SYNTHETIC_KEYS if getattr(self, k) is not None}
        return make_synthetic_market(
            seed=self.seed, segments=list(self.segments), spread_bps=self.spread_bps, **options
        )
