"""The data package's config groups, `data` (`DataSpec`) and `slices` (`SliceSpec`): values and the
checks that need nothing but the values.

Nothing here imports pandas or numpy: the CLI builds and checks a job from these before it imports
anything heavy. Reading the data is `rlpipe.data.sources.load_data`; turning the slice declarations
into windows is `rlpipe.data.slices` (`declared_slices`, `build_slices`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rlpipe.data.file_format import FileFormat
from rlpipe.errors import ConfigError, DataError


@dataclass(frozen=True)
class Segment:
    """One regime segment of the synthetic schedule (config `data.segments`)."""

    regime: str
    days: int


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


@dataclass
class WindowSpec:
    """One declared window (config `slices.windows[i]`)."""

    name: str
    role: str
    regime: str
    start: str
    end: str


@dataclass
class SliceSpec:
    """Slice declarations (config group `slices`)."""

    kind: str = "declared"
    """'declared' (the windows below) or 'walk_forward' (generated folds)."""
    embargo: str = "7D"
    """Least calendar time between a training bar and a validation or test bar."""
    windows: list[WindowSpec] = field(default_factory=list)
    """declared: the named windows with role and regime."""
    folds: int = 5
    """walk_forward: number of successive test folds."""
    test_bars: int = 253
    """walk_forward: bars per test fold."""
    train_bars: int | None = None
    """walk_forward: training bars before the embargo (None: all earlier bars)."""
    validation_bars: int = 0
    """walk_forward: validation bars between training (+embargo) and the first fold."""
    regime_threshold: float = 1.0
    """walk_forward: trend/noise ratio above which a fold is labelled bull (below minus: bear)."""
    step_bars: int | None = None
    """walk_forward: bars between fold starts (None: test_bars, folds back to back)."""
