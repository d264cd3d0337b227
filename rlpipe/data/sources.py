"""Market data sources: the embedded synthetic market, CSV and Parquet files."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.synthetic import Segment, make_synthetic_market
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, validate_market
from rlpipe.errors import DataError


def load_market(
    source: str,
    path: str | None = None,
    timestamp_column: str = "timestamp",
    max_gap: str | None = None,
    seed: int = 0,
    segments: Sequence[Segment | dict] = (),
    **synthetic: float | str,
) -> pd.DataFrame:
    """Load and validate market data from `source` (synthetic, csv or parquet).

    Args:
        source: "synthetic", "csv" or "parquet".
        path: file path for csv/parquet.
        timestamp_column: the column holding bar timestamps in a file (parsed as UTC).
        max_gap: largest allowed gap between bars, e.g. "6h"; None disables the check.
        seed: seed of the synthetic market.
        segments: regime schedule of the synthetic market.
        **synthetic: further keyword arguments of `make_synthetic_market`.

    Returns:
        A validated frame with a UTC DatetimeIndex and float price/volume columns.
    """
    gap = pd.Timedelta(max_gap) if max_gap else None
    if source == "synthetic":
        df = make_synthetic_market(seed=seed, segments=segments, **synthetic)  # type: ignore[arg-type]
        validate_market(df, "synthetic market", gap)
        return df
    if source not in ("csv", "parquet"):
        raise DataError(f"data.source={source!r}; expected synthetic, csv or parquet")
    if not path:
        raise DataError(f"data.source={source} needs data.path (the file to read)")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"data.path={path}: no such file (resolved to {file.resolve()})")
    try:
        raw = pd.read_csv(file) if source == "csv" else pd.read_parquet(file)
    except Exception as exc:  # the reader's own message is the useful part
        raise DataError(f"{file}: cannot be read as {source}: {exc}") from exc
    return frame_from_table(raw, str(file), timestamp_column, gap)


def frame_from_table(
    raw: pd.DataFrame,
    source: str,
    timestamp_column: str = "timestamp",
    max_gap: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Turn a raw table (timestamp column or index) into a validated market frame."""
    if timestamp_column in raw.columns:
        try:
            stamps = pd.to_datetime(raw[timestamp_column], utc=True)
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{source}: column '{timestamp_column}' has an unparseable timestamp: {exc}"
            ) from exc
        if stamps.isna().any():
            row = int(np.flatnonzero(stamps.isna().to_numpy())[0])
            after = f" (after {stamps.iloc[row - 1]})" if row > 0 else ""
            raise DataError(
                f"{source}: column '{timestamp_column}' has a missing timestamp in data row {row + 1}{after}"
            )
        raw = raw.drop(columns=[timestamp_column])
    elif isinstance(raw.index, pd.DatetimeIndex):
        stamps = raw.index.tz_localize("UTC") if raw.index.tz is None else raw.index.tz_convert("UTC")
    else:
        raise DataError(
            f"{source}: no timestamp column '{timestamp_column}' (set data.timestamp_column); "
            f"columns are {list(raw.columns)}"
        )
    raw.columns = [str(c).lower() for c in raw.columns]
    keep = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in raw.columns]
    df = raw[keep].copy()
    df.index = pd.DatetimeIndex(stamps, name="timestamp")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; found {list(raw.columns)}")
    validate_market(df, source, max_gap)
    return df.astype({c: float for c in keep})


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
    path: str | None = None
    """File to read for csv/parquet."""
    timestamp_column: str = "timestamp"
    """Column of bar timestamps in a file (parsed as UTC)."""
    max_gap: str | None = None
    """Largest allowed gap between consecutive bars, e.g. '6h' (None: no check)."""
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

    def load(self) -> pd.DataFrame:
        """Load and validate the market frame this spec describes."""
        synthetic = {
            k: getattr(self, k)
            for k in (
                "start",
                "freq",
                "sigma",
                "trend",
                "mean_reversion",
                "signal_strength",
                "signal_persistence",
            )
            if getattr(self, k) is not None
        }
        if self.source == "synthetic":
            synthetic["spread_bps"] = self.spread_bps
            if not self.segments:
                raise DataError("data.segments is empty: the synthetic market needs a regime schedule")
        return load_market(
            self.source,
            self.path,
            self.timestamp_column,
            self.max_gap,
            self.seed,
            list(self.segments),
            **synthetic,
        )
