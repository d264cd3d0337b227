"""Data -> slices -> features -> market, once per job (training, re-evaluation and the benchmarks)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

import pandas as pd

from rlpipe.data.calendar import Calendar
from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.data.features import FeatureStats, fit_stats, normalise, raw_features
from rlpipe.data.slices import Slice, Window, build_slices, resolve, role_mask
from rlpipe.data.sources import data_calendar, data_digest, load_data
from rlpipe.envs.market import Market, make_market
from rlpipe.types import ROLES

Guard = Callable[[str, list[Slice]], None]
"""Called with the data digest and the slices before they are resolved; raises to refuse them."""


@dataclass(frozen=True)
class Prepared:
    """A validated market frame, its slices resolved to bars, and the normalised market the envs step."""

    df: pd.DataFrame
    digest: str
    slices: list[Slice]
    windows: list[Window]
    stats: FeatureStats
    market: Market
    calendar: Calendar
    """The data's trading calendar (bars per year for every annualised figure)."""

    def windows_of(self, role: str) -> list[Window]:
        return [w for w in self.windows if w.slice.role == role]

    def stamps_of(self, role: str) -> list[list[str]]:
        """The windows of `role` as [start, end] text (how a policy's meta records them)."""
        return [[str(w.slice.start), str(w.slice.end)] for w in self.windows_of(role)]

    @property
    def train_ranges(self) -> list[tuple[int, int]]:
        """Bar ranges [lo, hi) of the training windows (where episodes are drawn)."""
        return [(w.lo, w.hi) for w in self.windows_of("train")]


def prepare(
    data: DataSpec,
    slice_spec: SliceSpec,
    stats: FeatureStats | None = None,
    roles: Collection[str] = ROLES,
    guard: Guard | None = None,
) -> Prepared:
    """Load and validate the data, build and check the slices, normalise the features.

    Args:
        data: the market data source.
        slice_spec: the declared or generated slices.
        stats: feature statistics to normalise with (a trained policy's); None fits them on the
            training windows.
        roles: the slice roles to keep (re-evaluation drops the training role).
        guard: a last check of the slices against the data (e.g. leakage into a model's training).
    """
    df = load_data(data)
    digest = data_digest(df)
    slices = [s for s in build_slices(slice_spec, df.index, df["close"].to_numpy(float)) if s.role in roles]
    if guard is not None:
        guard(digest, slices)
    windows = resolve(slices, df.index)
    raw = raw_features(df)
    if stats is None:
        stats = fit_stats(raw, role_mask(windows, len(df), "train"))
    calendar = data_calendar(data, df)
    market = make_market(df, normalise(raw, stats), data.spread_bps, calendar.bars_per_year)
    return Prepared(df, digest, slices, windows, stats, market, calendar)
