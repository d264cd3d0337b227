"""The trading calendar of a market frame: bar length, bars per year, trading time and gap tolerance.

`infer_calendar` reads the calendar from the UTC stamps themselves:

- The bar is the most common step between consecutive stamps: intraday under 18h, daily up to
  36h, periodic beyond.
- Intraday bars form daily sessions when some hours of the day (at least 3h and 2 bars) never
  hold a bar; the session opens where that break ends, and days begin there. Otherwise days begin
  at the time of day trading most often stops before a break of over a day (a weekend).
- A weekday is closed when its bars per day are under a quarter of the busiest weekday's: the
  weekend of equities and FX (whose few Sunday-evening bars belong to Monday's day).

| kind          | what it is                                   | bars per year                         |
|---------------|----------------------------------------------|---------------------------------------|
| 24x7          | every hour of every day (crypto, synthetic)  | 365.25 days / bar (hourly: 8766)      |
| 24x5          | around the clock on open weekdays (spot FX)  | 365.25 x 5/7 days / bar (hourly: 6261)|
| business_days | daily bars on open weekdays, holidays absent | 252 x open weekdays / 5 (252)         |
| sessions      | intraday bars in one session a day           | median bars per session x 252         |
| periodic      | bars longer than a day (weekly, monthly)     | 365.25 days / bar (weekly: 52.2)      |

252 is the usual count of exchange trading days a year (weekdays less about nine holidays); 24x5
counts every weekday (FX closes on a few holidays only).

Gaps are measured in trading time: elapsed time less the closed weekdays and, for sessions, the
hours outside the session, so weekends and nights are never gaps. Holidays are not known, so the
default tolerance (`max_gap`) leaves room for them: 1 day for 24x7, 3 days for 24x5, 8 trading
days (7 missing ones: Lunar New Year, Golden Week) for business_days and sessions, and never less
than 2 bars (one missing bar).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.errors import DataError
from rlpipe.types import IntArray

DAYS_PER_YEAR = 365.25
TRADING_DAYS_PER_YEAR = 252.0
DAY = pd.Timedelta(days=1)
MIDNIGHT = pd.Timedelta(0)
_DAY_NS = DAY.value
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MIN_BREAK = pd.Timedelta(hours=3)
_HOLIDAY_ROOM = {"24x7": 1.0, "24x5": 3.0, "business_days": 8.0, "sessions": 8.0, "periodic": 0.0}


@dataclass(frozen=True)
class Calendar:
    """When a market trades, as far as its bars tell: what annualises returns and bounds gaps."""

    kind: str
    """24x7, 24x5, business_days, sessions or periodic (see the module docstring)."""
    bar: pd.Timedelta
    """Bar length: the most common step between consecutive stamps."""
    bars_per_year: float
    """Bars in a year of this calendar; every annualised figure (Sharpe, volatility) uses it."""
    max_gap: pd.Timedelta
    """Largest gap allowed between consecutive bars, counted in trading time (inside sessions)."""
    closed_days: tuple[int, ...] = ()
    """Weekdays without trading (0 = Monday), of the calendar's days (which begin at day_start)."""
    day_start: pd.Timedelta = MIDNIGHT
    """Time of day (UTC) at which the calendar's days begin: where trading resumes after a break."""
    trading_day: pd.Timedelta = DAY
    """Trading time in an open day: the session's length (sessions), else the whole day."""

    def trading_clock(self, index: pd.DatetimeIndex) -> IntArray:
        """Trading time in nanoseconds at each stamp, counted from 1970-01-01 over open hours only."""
        ns = index.as_unit("ns").asi8 - self.day_start.value
        day = ns // _DAY_NS
        within = ns - day * _DAY_NS
        weeks, weekday = np.divmod(day + 3, 7)  # 1970-01-01 was a Thursday (weekday 3)
        is_open = np.ones(7, dtype=bool)
        is_open[list(self.closed_days)] = False
        open_before = np.concatenate([[0], np.cumsum(is_open)])
        days = weeks * int(is_open.sum()) + open_before[weekday]
        length = self.trading_day.value
        return days * length + np.where(is_open[weekday], np.minimum(within, length), 0)

    def describe(self) -> str:
        """One line for messages: kind, bar, bars per year and what is not trading time."""
        text = f"{self.kind} calendar of {_span(self.bar)} bars, {self.bars_per_year:.6g} bars a year"
        start = _clock(self.day_start)
        if self.trading_day < DAY:
            text += f", {_span(self.trading_day)} sessions from {start} UTC"
        closed = set(self.closed_days)
        for d in sorted(closed):
            if (d - 1) % 7 not in closed:  # the first day of a closed run (some day is open)
                end = next(e for e in range(d + 1, d + 8) if e % 7 not in closed)
                text += f", closed {_WEEKDAYS[d]} {start} to {_WEEKDAYS[end % 7]} {start} UTC"
        return text


def _span(td: pd.Timedelta) -> str:
    """A duration as people write it: 1D, 8h, 5min (else pandas' own form)."""
    for unit, name in ((DAY, "D"), (pd.Timedelta(hours=1), "h"), (pd.Timedelta(minutes=1), "min")):
        if td % unit == pd.Timedelta(0):
            return f"{td // unit}{name}"
    return str(td)


def _clock(td: pd.Timedelta) -> str:
    """A time of day as HH:MM."""
    minutes = int(td / pd.Timedelta(minutes=1))
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def infer_calendar(index: pd.DatetimeIndex) -> Calendar:
    """The calendar of a sorted UTC index, by the rules of the module docstring."""
    ns, _ = _counts(index.as_unit("ns").asi8)
    if len(ns) < 2:
        raise DataError(f"a calendar needs at least 2 distinct bars, got {len(ns)}")
    values, counts = _counts(np.diff(ns))
    bar = int(values[np.argmax(counts)])  # the most common step (the shortest on a tie)
    step = pd.Timedelta(bar, unit="ns")
    if bar > 1.5 * _DAY_NS:
        return _calendar("periodic", step, DAYS_PER_YEAR * _DAY_NS / bar)
    session = _session_window(ns, bar) if bar < 0.75 * _DAY_NS else None
    if session is not None:
        start, length = session
        days = (ns - start) // _DAY_NS
        closed = _closed_weekdays(ns - start, bar)
        per_session = float(np.median(_counts(days)[1]))
        bpy = per_session * TRADING_DAYS_PER_YEAR * (7 - len(closed)) / 5
        return _calendar("sessions", step, bpy, closed, start, length)
    start = _reopening(ns, bar)
    closed = _closed_weekdays(ns - start, bar)
    if not closed:
        return _calendar("24x7", step, DAYS_PER_YEAR * _DAY_NS / bar)
    if bar >= 0.75 * _DAY_NS:
        bpy = TRADING_DAYS_PER_YEAR * (7 - len(closed)) / 5 * _DAY_NS / bar
        return _calendar("business_days", step, bpy, closed, start)
    bpy = DAYS_PER_YEAR * ((7 - len(closed)) / 7) * (_DAY_NS / bar)
    return _calendar("24x5", step, bpy, closed, start)


def _calendar(
    kind: str,
    bar: pd.Timedelta,
    bars_per_year: float,
    closed: tuple[int, ...] = (),
    start: int = 0,
    length: int = _DAY_NS,
) -> Calendar:
    """A calendar with its default gap tolerance: room for holidays, and at least one missing bar."""
    trading_day = pd.Timedelta(length, unit="ns")
    max_gap = max(trading_day * _HOLIDAY_ROOM[kind], 2 * bar)
    return Calendar(
        kind, bar, float(bars_per_year), max_gap, closed, pd.Timedelta(start, unit="ns"), trading_day
    )


def _reopening(ns: IntArray, bar: int) -> int:
    """Time of day (ns) at which trading most often stops before a break of over a day (0: none).

    Days that begin there make a weekend exactly its closed days, whatever the hour the market
    closes (FX: Friday 21:00 or 22:00 UTC with daylight saving time).
    """
    long = np.flatnonzero(np.diff(ns) > _DAY_NS)
    if not len(long):
        return 0
    values, counts = _counts((ns[long] + bar) % _DAY_NS)
    return int(values[np.argmax(counts)])


def _closed_weekdays(shifted: IntArray, bar: int) -> tuple[int, ...]:
    """Weekdays (0 = Monday) whose bars per day fall under a quarter of the busiest weekday's.

    `shifted` are the stamps (ns) less the time of day the calendar's days begin. A weekday is
    evidence only where the data spans at least half of one (partial first and last days count
    by the part of them the data covers).
    """
    first, end = int(shifted[0]), int(shifted[-1]) + bar
    days = np.arange(first // _DAY_NS, (end - 1) // _DAY_NS + 1)
    covered = np.minimum(end, (days + 1) * _DAY_NS) - np.maximum(first, days * _DAY_NS)
    spanned = np.bincount((days + 3) % 7, weights=covered / _DAY_NS, minlength=7)
    bars = np.bincount((shifted // _DAY_NS + 3) % 7, minlength=7)
    rate = np.divide(bars, spanned, out=np.zeros(7), where=spanned > 0)
    closed = (spanned >= 0.5) & (rate < 0.25 * rate.max())
    return tuple(int(d) for d in np.flatnonzero(closed))


def _session_window(ns: IntArray, bar: int) -> tuple[int, int] | None:
    """(opening time of day, length) in ns of a daily session, or None when bars cover the whole day.

    A session needs a daily break of at least 3 hours and 2 bars that no bar ever falls in, seen
    over at least 2 days of data.
    """
    if ns[-1] - ns[0] < 2 * _DAY_NS:
        return None
    slot = math.gcd(bar, _DAY_NS)
    if _DAY_NS // slot > 86_400:  # bars that are not a whole number of seconds: second slots
        slot = 10**9
    n = _DAY_NS // slot
    starts = _counts((ns % _DAY_NS) // slot)[0]
    covered = np.zeros(n, dtype=bool)
    for j in range(min(n, -(-bar // slot))):  # every slot a bar spans, from its start
        covered[(starts + j) % n] = True
    run, end = _longest_circular_run(~covered)
    if run * slot < max(_MIN_BREAK.value, 2 * bar):
        return None
    return (end % n) * slot, (n - run) * slot


def _longest_circular_run(flags: np.ndarray) -> tuple[int, int]:
    """Length of the longest run of True in a circular array, and the position just after it."""
    n = len(flags)
    doubled = np.concatenate([flags, flags]).astype(np.int8)
    edges = np.diff(np.concatenate([[0], doubled, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    if len(starts) == 0:
        return 0, 0
    lengths = np.minimum(ends - starts, n)
    best = int(np.argmax(lengths))
    return int(lengths[best]), int(starts[best] + lengths[best])


def _counts(values: IntArray) -> tuple[IntArray, IntArray]:
    """The distinct values in ascending order and how often each occurs (by sorting: np.unique
    hashes, which is slow on millions of stamps)."""
    ordered = np.sort(values)
    first = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return ordered[first], np.diff(np.append(first, len(ordered)))
