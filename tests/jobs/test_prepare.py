"""Data -> slices -> features -> market once: statistics fitted on training bars, roles kept, guards run."""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.data.features import fit_stats, raw_features
from rlpipe.data.slices import role_mask
from rlpipe.errors import SliceError
from rlpipe.jobs.prepare import prepare


def test_prepared_market_is_normalised_with_training_statistics(smoke_job):
    job = smoke_job()
    p = prepare(job.data, job.slices)
    raw = raw_features(p.df)
    assert p.stats == fit_stats(raw, role_mask(p.windows, len(p.df), "train"))
    assert p.market.n_bars == len(p.df) and p.market.features.dtype == np.float32
    assert len(p.digest) == 16 and [w.slice for w in p.windows] == p.slices
    assert p.train_ranges == [(w.lo, w.hi) for w in p.windows if w.slice.role == "train"]
    assert {w.slice.role for w in p.windows_of("test")} == {"test"} and len(p.windows_of("test")) == 5


def test_given_statistics_and_roles_are_used_as_given(smoke_job):
    job = smoke_job()
    trained = prepare(job.data, job.slices)
    p = prepare(job.data, job.slices, stats=trained.stats, roles=("test",))
    assert p.stats is trained.stats
    assert {s.role for s in p.slices} == {"test"} and len(p.slices) == 5
    np.testing.assert_array_equal(p.market.features, trained.market.features)


def test_guard_sees_the_digest_and_slices_and_can_refuse(smoke_job):
    job = smoke_job()
    seen = []

    def guard(digest: str, slices: list) -> None:
        seen.append((digest, len(slices)))
        raise SliceError("refused by the guard")

    with pytest.raises(SliceError, match="refused by the guard"):
        prepare(job.data, job.slices, guard=guard)
    assert seen == [(prepare(job.data, job.slices).digest, 14)]
