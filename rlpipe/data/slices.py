"""Named evaluation windows with a role and a regime label; leakage checks; walk-forward folds; the
slices a `SliceSpec` (config group `slices`, `rlpipe.data.data_config`) declares or generates."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.data.calendar import infer_calendar
from rlpipe.data.data_config import SliceSpec
from rlpipe.errors import SliceError
from rlpipe.types import REGIMES, ROLES, BoolArray


@dataclass(frozen=True)
class Slice:
    """A window of bars [start, end] (inclusive timestamps) with a role and a regime label."""

    name: str
    role: str
    regime: str
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class Window:
    """A slice resolved to bar positions [lo, hi) of one market frame."""

    slice: Slice
    lo: int
    hi: int

    @property
    def bars(self) -> int:
        return self.hi - self.lo


def _ts(value: object, where: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise SliceError(f"{where}: cannot parse timestamp {value!r}") from exc
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_slices(items: Iterable[dict], key: str = "slices.windows") -> list[Slice]:
    """Build slices from config dicts (name, role, regime, start, end), checking each field."""
    out: list[Slice] = []
    for i, item in enumerate(items):
        where = f"{key}[{i}]" + (f" ({item['name']})" if "name" in item else "")
        missing = {"name", "role", "start", "end"} - set(item)
        if missing:
            raise SliceError(f"{where}: missing field(s) {sorted(missing)}")
        role, regime = item["role"], item.get("regime", "unlabelled")
        if role not in ROLES:
            raise SliceError(f"{where}: role={role!r}; expected one of {ROLES}")
        if regime not in (*REGIMES, "unlabelled"):
            raise SliceError(f"{where}: regime={regime!r}; expected one of {REGIMES}")
        s = Slice(str(item["name"]), role, regime, _ts(item["start"], where), _ts(item["end"], where))
        if s.end <= s.start:
            raise SliceError(f"{where}: end {s.end} is not after start {s.start}")
        out.append(s)
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SliceError(f"{key}: duplicate slice name(s) {dupes}")
    return out


def recorded_training(windows: Iterable[Sequence[str]], prefix: str, role: str = "train") -> list[Slice]:
    """Windows recorded as [start, end] text (a policy's meta) as slices of `role` (training by default)."""
    return [
        Slice(f"{prefix}_{i}", role, "unlabelled", pd.Timestamp(a), pd.Timestamp(b))
        for i, (a, b) in enumerate(windows)
    ]


HELD_OUT = ("validation", "test")
"""Roles no training bar may reach: validation chooses the checkpoint length and the champion, test
judges them; bars the policy was fit on would make both look better than they are."""


def check_no_leakage(slices: Sequence[Slice], embargo: pd.Timedelta) -> None:
    """Refuse any validation or test window that overlaps a training window widened by the embargo."""
    train = [s for s in slices if s.role == "train"]
    if not train:
        raise SliceError("no slice has role 'train'; declare at least one training window")
    if not any(s.role == "test" for s in slices):
        raise SliceError("no slice has role 'test'; declare at least one test window")
    for t in (s for s in slices if s.role in HELD_OUT):
        for tr in train:
            if t.start <= tr.end + embargo and tr.start - embargo <= t.end:
                raise SliceError(_leak_message(t, tr, embargo))


def _leak_message(held: Slice, tr: Slice, embargo: pd.Timedelta) -> str:
    """Which held-out window touches which training window, how far apart they are, and what to do."""
    if held.start > tr.end:
        how, edge = f"starts {held.start - tr.end} after", " ends"
    elif held.end < tr.start:
        how, edge = f"ends {tr.start - held.end} before", " starts"
    else:
        how, edge = "overlaps", ""
    return (
        f"{held.role} slice '{held.name}' [{held.start} .. {held.end}] {how} training slice "
        f"'{tr.name}' [{tr.start} .. {tr.end}]{edge}, within the embargo of {embargo} (slices.embargo); "
        f"move or shorten one of the two windows so that more than {embargo} separates them, "
        "or lower slices.embargo"
    )


def resolve(slices: Sequence[Slice], index: pd.DatetimeIndex, min_bars: int = 2) -> list[Window]:
    """Map slices to bar positions of `index`; refuse windows outside the data or too short."""
    out = []
    for s in slices:
        lo = int(index.searchsorted(s.start, side="left"))
        hi = int(index.searchsorted(s.end, side="right"))
        if hi - lo < min_bars:
            raise SliceError(
                f"slice '{s.name}' [{s.start} .. {s.end}] holds {hi - lo} bar(s) of the data "
                f"(which spans {index[0]} .. {index[-1]}); it needs at least {min_bars}"
            )
        out.append(Window(s, lo, hi))
    return out


def role_mask(windows: Sequence[Window], n: int, role: str) -> BoolArray:
    """Boolean mask over n bars that is True inside every window of `role`."""
    mask = np.zeros(n, dtype=bool)
    for w in windows:
        if w.slice.role == role:
            mask[w.lo : w.hi] = True
    return mask


def label_regime(close: np.ndarray, threshold: float = 1.0) -> str:
    """Label a window bull / bear / sideways from its own trend and volatility.

    The rule: t = log(close_end / close_start) / (sigma_1bar * sqrt(n)), the window's drift in
    units of its own random-walk noise. t > threshold is bull, t < -threshold bear, else sideways.
    """
    r = np.diff(np.log(close))
    if len(r) < 2 or r.std() == 0:
        return "sideways"
    t = r.sum() / (r.std() * np.sqrt(len(r)))
    return "bull" if t > threshold else "bear" if t < -threshold else "sideways"


def walk_forward(
    index: pd.DatetimeIndex,
    close: np.ndarray,
    folds: int,
    test_bars: int,
    embargo_bars: int = 0,
    train_bars: int | None = None,
    validation_bars: int = 0,
    regime_threshold: float = 1.0,
    step_bars: int | None = None,
    embargo: pd.Timedelta | None = None,
) -> list[Slice]:
    """Walk-forward slices for one policy: a training window, then `folds` successive test folds.

    The folds start every `step_bars` (default `test_bars`: back to back; less: overlapping;
    more: with gaps) and the last one ends on the last bar. Before the first sits an optional
    validation window, and before that the embargo, then the training window: anchored at the
    first bar (`train_bars` None) or sliding (the last `train_bars` bars). Test folds are labelled
    by `label_regime`.

    The embargo is `embargo_bars` bars, or, when `embargo` (calendar time) is given, whatever
    the index says: training ends on the last bar that closes (its stamp plus one bar of the
    data's calendar) at least `embargo` before the first validation or test bar, so weekends and
    holidays count as the time they are and `check_no_leakage(slices, embargo)` always passes.
    """
    n = len(index)
    step = step_bars or test_bars
    test_lo = n - test_bars - (folds - 1) * step
    val_lo = test_lo - validation_bars
    if embargo is None:
        train_hi = val_lo - embargo_bars
    elif 0 <= val_lo < n:
        bar = infer_calendar(index).bar
        train_hi = int(index.searchsorted(index[val_lo] - embargo - bar, side="right"))
    else:
        train_hi = -1  # the folds alone do not fit
    train_lo = 0 if train_bars is None else train_hi - train_bars
    if min(folds, test_bars) <= 0 or train_lo < 0 or train_hi - train_lo < 2:
        gap = f"{embargo_bars}" if embargo is None else f"{max(val_lo - train_hi, 0)} ({embargo})"
        raise SliceError(
            f"slices.walk_forward: {folds} folds x {test_bars} test bars + {validation_bars} validation "
            f"+ {gap} embargo + {train_bars or 'all remaining'} training bars do not fit "
            f"in the data's {n} bars"
        )
    out = [Slice("train", "train", "unlabelled", index[train_lo], index[train_hi - 1])]
    if validation_bars:
        regime = label_regime(close[val_lo:test_lo], regime_threshold)
        out.append(Slice("validation", "validation", regime, index[val_lo], index[test_lo - 1]))
    for k in range(folds):
        lo = test_lo + k * step
        regime = label_regime(close[lo : lo + test_bars], regime_threshold)
        out.append(Slice(f"fold{k + 1}", "test", regime, index[lo], index[lo + test_bars - 1]))
    return out


def coverage_window(spec: SliceSpec, slices: Sequence[Slice], index: pd.DatetimeIndex) -> int:
    """Bars per window when labelling the whole series for regime coverage."""
    if spec.kind == "walk_forward":
        return spec.test_bars
    tests = [s for s in slices if s.role == "test"]
    return int(np.median([index.searchsorted(s.end) - index.searchsorted(s.start) for s in tests]))


def declared_slices(spec: SliceSpec) -> list[Slice]:
    """The declared windows, parsed and checked for leakage ([] for walk_forward: its windows need
    the data). It reads no data, so `jobs.checks` refuses them before anything is recorded."""
    if spec.kind == "walk_forward":
        return []
    if spec.kind != "declared":
        raise SliceError(f"slices.kind={spec.kind!r}; expected declared or walk_forward")
    if not spec.windows:
        raise SliceError("slices.windows is empty; declare train and test windows")
    slices = parse_slices([w if isinstance(w, dict) else w.__dict__ for w in spec.windows])
    check_no_leakage(slices, embargo_time(spec))
    return slices


def build_slices(spec: SliceSpec, index: pd.DatetimeIndex, close: np.ndarray) -> list[Slice]:
    """The slices for this data, checked for leakage into validation and test before anything trains."""
    slices = declared_slices(spec)
    if spec.kind == "walk_forward":
        embargo = embargo_time(spec)
        slices = walk_forward(index, close, spec.folds, spec.test_bars, train_bars=spec.train_bars,
                              validation_bars=spec.validation_bars, step_bars=spec.step_bars,
                              regime_threshold=spec.regime_threshold, embargo=embargo)  # fmt: skip
        check_no_leakage(slices, embargo)
    return slices


def embargo_time(spec: SliceSpec) -> pd.Timedelta:
    """`slices.embargo` as a time span (refused, naming the key, when pandas cannot read it)."""
    try:
        return pd.Timedelta(spec.embargo)
    except ValueError as exc:
        msg = f"slices.embargo={spec.embargo!r} is not a time span; pass e.g. 7D or 36h"
        raise SliceError(msg) from exc


def regimes_offered(
    slices: Sequence[Slice], close: np.ndarray, window_bars: int, threshold: float = 1.0
) -> set[str]:
    """The regime labels the data offers.

    Declared labels of every slice (any role) when the slices carry labels; otherwise (user data
    without labels, walk-forward) the labels of consecutive `window_bars` windows over the whole
    series by `label_regime`, so a test set can be checked for the regimes it misses.
    """
    declared = {s.regime for s in slices if s.regime != "unlabelled"}
    if any(s.regime == "unlabelled" for s in slices if s.role == "train") and window_bars >= 2:
        chunks = range(0, len(close) - window_bars + 1, window_bars)
        declared |= {label_regime(close[i : i + window_bars], threshold) for i in chunks}
    return declared
