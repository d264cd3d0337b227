"""How a CSV file lays its bars out: encoding, separator, header rows, column names, decimal mark.

- encoding: `data.encoding`, or UTF-8 (with or without a byte-order mark), or else Windows-1252,
  what spreadsheets write in Western Europe (logged);
- separator: `data.sep`, or the most frequent of , ; tab | in the first line;
- header: `data.header_rows` rows before the first bar, or told from the file: none when the first
  row holds numbers (a headerless file, whose columns `data.names` names), three for a yfinance
  download saved with pandas (`Price,Close,...` / `Ticker,AAPL,...` / `Date,,,`: the Price row
  names the columns, the Ticker row gives the instrument, `data.symbol` picks one of several),
  else one. `data.names` names the columns in file order, replacing the header's names if any;
- decimal mark: `data.decimal`, or a comma by itself in a file not separated by commas when every
  value of a column is a number written with one (`9800,00`).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import pandas as pd

from rlpipe.data.columns import ALIASES, normalised
from rlpipe.data.file_format import SEPARATORS, FileFormat
from rlpipe.errors import ConfigError, DataError

log = logging.getLogger(__name__)

_HEAD = 8  # lines read to tell the header
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")
COMMA_NUMBER = re.compile(r"[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?")
_FALLBACK_ENCODING = "cp1252"


@dataclass(frozen=True)
class Header:
    """What precedes the first bar: how many rows, the column names, and which columns to keep."""

    rows: int
    names: list[str]  # one per column of the file
    keep: list[int] | None = None  # the positions of one ticker's columns; None: every column


def read_csv_table(file: Path, layout: FileFormat) -> pd.DataFrame:
    """The raw table of one CSV file: its columns named, decimal commas read as numbers."""
    encoding = _encoding(file, layout.encoding)
    with file.open(encoding=encoding, newline="") as fh:
        first = fh.readline()
        fh.seek(0)
        sep = layout.separator or _sniffed(first)
        head = [row for row in islice(csv.reader(fh, delimiter=sep), _HEAD) if row]
    if not head:
        raise DataError(f"{file}: the file is empty (no header, no bars)")
    header = _header(head, str(file), layout)
    fields = len(head[header.rows]) if len(head) > header.rows else len(header.names)
    if layout.names is not None and fields != len(header.names):
        raise DataError(
            f"{file}: data.names lists {len(header.names)} names, but data row 1 has {fields} fields; "
            "name every column in file order"
        )
    width = max(fields, len(header.names))
    names = [*header.names, *(f"Unnamed: {i}" for i in range(len(header.names), width))]
    raw = pd.read_csv(file, sep=sep, header=None, names=range(width), skiprows=header.rows, encoding=encoding)
    if header.keep is not None:
        raw, names = raw.iloc[:, header.keep], [names[i] for i in header.keep]
    raw.columns = _unique(names)
    return _decimal_commas(raw, layout.decimal, sep)


def _encoding(file: Path, wanted: str | None) -> str:
    """data.encoding, else UTF-8 if the whole file decodes as such, else Windows-1252."""
    if wanted is not None:
        return wanted
    try:
        with file.open(encoding="utf-8-sig") as fh:
            while fh.read(1 << 20):
                pass
    except UnicodeDecodeError:
        log.info("%s is not UTF-8: read as %s (set data.encoding if not)", file, _FALLBACK_ENCODING)
        return _FALLBACK_ENCODING
    return "utf-8-sig"


def _sniffed(line: str) -> str:
    """The most frequent of , ; tab | in the first line (',' when none)."""
    counts = {sep: line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def _header(head: list[list[str]], file: str, layout: FileFormat) -> Header:
    """The header rows: data.header_rows or told from the file; names from data.names or the header."""
    levels = _level_rows(head)
    rows = layout.header_rows
    if rows is None:
        rows = levels + 1 if levels else (0 if _holds_numbers(head[0]) else 1)
    ticker_row = _ticker_row(head, levels) if levels and rows == levels + 1 else None
    if layout.names is not None:
        header = Header(rows, list(layout.names))
    elif rows == 0:
        preview = ", ".join(head[0][:3]) + (", ..." if len(head[0]) > 3 else "")
        raise DataError(
            f"{file}: the first row ({preview}) holds numbers, not column names: the file has no "
            f"header row; name its {len(head[0])} columns in file order with "
            "data.names=[timestamp,open,high,low,close,volume,...] (data=binance names those of a "
            "Binance kline file), or set data.header_rows=1 if that row is the header"
        )
    elif levels and rows == levels + 1:
        header = _levelled(head, levels, ticker_row)
    else:
        header = Header(rows, [cell or f"Unnamed: {i}" for i, cell in enumerate(head[0])])
    return _pick_ticker(header, head, ticker_row, file, layout)


def _holds_numbers(row: list[str]) -> bool:
    """More than half the cells are numbers: a row of bars, not of names."""
    return sum(bool(_NUMBER.fullmatch(cell.strip())) for cell in row) * 2 > len(row)


def _level_rows(head: list[list[str]]) -> int:
    """Rows of column levels above the index-name row pandas writes (yfinance: 2), or 0.

    pandas writes columns of several levels one row per level, each led by the level's name, then
    a row holding only the index name (`Date,,,`); the index name must be a timestamp name.
    """
    for m, row in enumerate(head[1:5], start=1):
        if (
            len(row) > 1
            and normalised(row[0]) in ALIASES["timestamp"]
            and not any(c.strip() for c in row[1:])
        ):
            levels = head[:m]
            return m if all(len(r) == len(row) and all(c.strip() for c in r[1:]) for r in levels) else 0
    return 0


def _ticker_row(head: list[list[str]], levels: int) -> int | None:
    return next((i for i in range(levels) if normalised(head[i][0]) in ("ticker", "symbol")), None)


def _levelled(head: list[list[str]], levels: int, ticker_row: int | None) -> Header:
    """Names from the level named Price (else the first that is not the ticker's), the index name first."""
    named = [i for i in range(levels) if i != ticker_row]
    price = next((i for i in named if normalised(head[i][0]) == "price"), named[0] if named else 0)
    return Header(levels + 1, [head[levels][0], *head[price][1:]])


def _pick_ticker(
    header: Header, head: list[list[str]], ticker_row: int | None, file: str, layout: FileFormat
) -> Header:
    """Keep the columns of one ticker of a Ticker row; data.symbol picks it when there are several."""
    symbol = layout.symbol
    if ticker_row is None:
        if symbol and not layout.symbol_in_path:
            raise ConfigError(
                f"data.symbol={symbol!r}, but data.path={file} has no {{symbol}} placeholder and no "
                "Ticker row (a yfinance download of several tickers) to pick it from, so every symbol "
                "would read the same file; write data.path as e.g. 'bars/{symbol}.csv'"
            )
        return header
    row = head[ticker_row]
    tickers = list(dict.fromkeys(c for c in row[1:] if c.strip()))
    if symbol in tickers or (len(tickers) == 1 and (symbol is None or layout.symbol_in_path)):
        chosen = symbol if symbol in tickers else tickers[0]
    elif symbol is not None:
        raise ConfigError(f"data.symbol={symbol!r} is not in {file}'s Ticker row {tickers}; pick one of them")
    else:
        raise DataError(
            f"{file}: its Ticker row holds several tickers {tickers}; pick one with "
            f"data.symbol={tickers[0]} (or sweep them: -m data.symbol={','.join(tickers)})"
        )
    keep = [0, *(i for i, c in enumerate(row) if i and c in (chosen, ""))]
    log.info("%s: %d header rows (pandas/yfinance levels), ticker %s", file, header.rows, chosen)
    return Header(header.rows, header.names, keep)


def _unique(names: list[str]) -> list[str]:
    """Names made unique the way pandas does it: a repeated 'Close' becomes 'Close.1'."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if not count else f"{name}.{count}")
    return out


def _decimal_commas(raw: pd.DataFrame, mark: str | None, sep: str) -> pd.DataFrame:
    """Columns of numbers written with a decimal comma, as numbers.

    With data.decimal=',' every cell so written is read; with null, only a column in which every
    value is (a comma between thousands, '1,234', cannot be told apart in a comma-separated file).
    """
    if mark == "." or (mark is None and sep == ","):
        return raw
    out = raw.copy()
    for col in raw.columns:
        values = raw[col]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
            continue
        text = values.astype("string").str.strip()
        written = text.str.fullmatch(COMMA_NUMBER.pattern).fillna(False).astype(bool)
        if not text.str.contains(",", regex=False).fillna(False).any():
            continue
        if mark is None and not (written | values.isna()).all():
            continue
        numbers = pd.to_numeric(text.where(written).str.replace(",", ".", regex=False))
        out[col] = numbers if written.all() else values.where(~written, numbers.astype(object))
    return out
