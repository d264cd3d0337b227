"""How a file writes its bars: the `data` keys about its layout, columns and timestamps, checked.

The CSV keys (`header_rows`, `names`, `sep`, `decimal`, `encoding`) say what a Parquet file says
by itself, so they are refused for one rather than ignored.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rlpipe.errors import ConfigError

ADJ_CLOSE_OPTIONS: tuple[str, ...] = ("ignore", "use")
EPOCH_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")
"""data.timestamp_unit: the epoch units numeric timestamps may be in (`rlpipe.data.stamps`)."""
DECIMAL_MARKS: tuple[str, ...] = (".", ",")
SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
_TAB_SPELLINGS = ("\\t", "tab", "TAB")  # `data.sep='\t'` on the command line arrives as backslash-t
CSV_KEYS: tuple[str, ...] = ("header_rows", "names", "sep", "decimal", "encoding")


@dataclass(frozen=True)
class FileFormat:
    """The `data` keys about how bars are written in a file (see `DataSpec` for each one)."""

    timestamp_column: str
    timestamp_format: str | None
    dayfirst: bool
    timezone: str
    timestamp_unit: str | None
    columns: Mapping[str, str]
    adj_close: str
    header_rows: int | None
    names: Sequence[str] | None
    sep: str | None
    decimal: str | None
    encoding: str | None
    symbol: str | None
    """data.symbol: picks the instrument from a Ticker header row (yfinance) holding several."""
    symbol_in_path: bool
    """data.path has a `{symbol}` placeholder (the symbol picked the file already)."""

    @property
    def separator(self) -> str | None:
        """data.sep with a tab however it was spelled; None: sniffed from the file."""
        return "\t" if self.sep in _TAB_SPELLINGS else self.sep

    def check(self, kind: str) -> None:
        """Refuse values that cannot work, naming the key, before any file is read.

        Args:
            kind: csv or parquet (the CSV keys are refused for a Parquet file).
        """
        if self.adj_close not in ADJ_CLOSE_OPTIONS:
            raise ConfigError(f"data.adj_close={self.adj_close!r}; expected one of {list(ADJ_CLOSE_OPTIONS)}")
        if self.timestamp_unit is not None and self.timestamp_unit not in EPOCH_UNITS:
            raise ConfigError(
                f"data.timestamp_unit={self.timestamp_unit!r}; expected one of {list(EPOCH_UNITS)} or null"
            )
        if kind != "csv":
            key = next((k for k in CSV_KEYS if getattr(self, k) is not None), None)
            if key is not None:
                raise ConfigError(
                    f"data.{key}={getattr(self, key)!r} reads CSV files, but data.source={kind}: a "
                    f"{kind} file carries its own column names and numbers; set data.{key}=null "
                    "(map columns with data.columns)"
                )
            return
        self._check_header()
        self._check_numbers()

    def _check_header(self) -> None:
        rows = self.header_rows
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
            raise ConfigError(f"data.header_rows={rows!r}; expected a count of rows (0, 1, 3...) or null")
        if self.names is not None:
            names = list(self.names)
            if not names or not all(isinstance(n, str) and n.strip() for n in names):
                raise ConfigError(f"data.names={names!r}; expected the column names in file order")
            if len(set(names)) < len(names):
                twice = sorted({n for n in names if names.count(n) > 1})
                raise ConfigError(f"data.names={names!r} names {twice} twice; give each column its own name")
        elif rows == 0:
            raise ConfigError(
                "data.header_rows=0 (no header row) needs data.names, the file's column names in "
                "order, e.g. data.names=[timestamp,open,high,low,close,volume]"
            )

    def _check_numbers(self) -> None:
        if self.separator is not None and (len(self.separator) != 1 or self.separator in "\"'0123456789.\n"):
            raise ConfigError(
                f"data.sep={self.sep!r}; expected one character such as ';' or '\\t' (quoted on the "
                "command line: data.sep=';'), or null to tell it from the first line"
            )
        if self.decimal is not None and self.decimal not in DECIMAL_MARKS:
            raise ConfigError(
                f"data.decimal={self.decimal!r}; expected '.' or ',' (quoted on the command line: "
                "data.decimal=','), or null"
            )
        if self.decimal is not None and self.decimal == self.separator:
            raise ConfigError(f"data.decimal={self.decimal!r} is also data.sep; a file needs two marks")
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except LookupError as exc:
                raise ConfigError(
                    f"data.encoding={self.encoding!r} is not a text encoding (e.g. 'utf-8', 'cp1252', "
                    "'latin-1'), or null"
                ) from exc
