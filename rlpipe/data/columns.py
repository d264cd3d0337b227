"""Our columns found among a file's: `data.columns` first, then `data.timestamp_column`, then aliases.

Names are compared without case, spaces or punctuation (letters of any script are kept, so
'Eröffnung' is matched as itself), against common aliases (`Date`, `Time`, `Datetime`, `Gmt time`,
`Open time`, `Adj Close`, `Close/Last`, `Vol`, `<TICKVOL>`, ...). When several columns could be the
volume (MetaTrader writes `<TICKVOL>` and a `<VOL>` of zeros for FX), the first that carries data is
taken, and the choice is logged.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import pandas as pd

from rlpipe.data.file_format import FileFormat
from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from rlpipe.errors import ConfigError, DataError

log = logging.getLogger(__name__)

OURS: tuple[str, ...] = ("timestamp", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "adj_close")
ALIASES: dict[str, tuple[str, ...]] = {  # normalised names, most specific first
    "timestamp": ("timestamp", "datetime", "date", "time", "gmttime", "utctime", "localtime", "opentime"),
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closelast", "last", "closeprice"),
    "volume": ("volume", "vol", "v", "tickvolume", "tickvol"),
    "bid": ("bid",),
    "ask": ("ask", "offer"),
    "adj_close": ("adjclose", "adjustedclose"),
}
CONFIG_FILE_HINT = (
    "is not plain ASCII, so it cannot be written on the command line: map it in a config file "
    "(conf/data/csv.yaml shows how), or rename every column in file order with "
    "data.names=[timestamp,open,...] data.header_rows=1"
)


def normalised(name: object) -> str:
    """A column name compared without case, spaces or punctuation: 'Adj Close' -> 'adjclose'."""
    return re.sub(r"[\W_]", "", unicodedata.normalize("NFKC", str(name)).casefold())


def match_columns(raw: pd.DataFrame, source: str, layout: FileFormat) -> dict[str, str]:
    """Our column names -> the table's: data.columns first, then data.timestamp_column, then aliases.

    Raises:
        DataError: a mapped or required column is missing (the columns found are listed).
        ConfigError: data.columns maps to a name that is not one of ours.
    """
    found = [str(c) for c in raw.columns]
    by_name = {normalised(c): c for c in reversed(found)}  # the first of equal names wins
    names: dict[str, str] = {}
    for theirs, ours in layout.columns.items():
        if ours not in OURS:
            raise ConfigError(f"data.columns maps {theirs!r} to {ours!r}; expected one of {list(OURS)}")
        if normalised(theirs) not in by_name:
            raise DataError(
                f"{source}: data.columns names column {theirs!r}, which the file does not have; "
                f"columns found: {found}"
            )
        names[ours] = by_name[normalised(theirs)]
    taken = set(names.values())
    wanted = normalised(layout.timestamp_column)
    stamp_aliases = (wanted, *ALIASES["timestamp"]) if wanted in ALIASES["timestamp"] else (wanted,)
    for ours, aliases in {**ALIASES, "timestamp": stamp_aliases}.items():
        hits = [by_name[a] for a in aliases if a in by_name and by_name[a] not in taken]
        if ours not in names and hits:
            names[ours] = _volume(raw, hits, source) if ours == "volume" else hits[0]
            taken.add(names[ours])
    _require(names, found, source, layout.timestamp_column)
    return {ours: names[ours] for ours in OURS if ours in names}


def _volume(raw: pd.DataFrame, candidates: list[str], source: str) -> str:
    """The first candidate volume column that holds a non-zero number (else the first); logged."""
    if len(candidates) == 1:
        return candidates[0]
    numbers = {c: pd.to_numeric(raw[c], errors="coerce").fillna(0) for c in candidates}
    empty = [c for c in candidates if not numbers[c].ne(0).any()]
    chosen = next((c for c in candidates if c not in empty), candidates[0])
    why = f"; {', '.join(repr(c) for c in empty)} only zeros" if empty else ""
    log.info("%s: volume read from column %r (of %s%s)", source, chosen, candidates, why)
    return chosen


def _require(names: dict[str, str], found: list[str], source: str, timestamp_column: str) -> None:
    foreign = [c for c in found if not c.isascii()]
    hint = f"; {foreign[0]!r} {CONFIG_FILE_HINT}" if foreign else ""
    if "timestamp" not in names:
        raise DataError(
            f"{source}: no timestamp column {timestamp_column!r} (set data.timestamp_column, or map "
            f"one with data.columns; Date, Time, Datetime and Timestamp are found by themselves); "
            f"columns are {found}{hint}"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; found {found}; map a column of another name "
            f"with data.columns (file column -> ours, e.g. {{Px_Last: close}}){hint}"
        )
