"""A continued model's data (latest bars, a recent/older mix) and the windows its guard scores on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlpipe.data.slices import Slice, Window
from rlpipe.envs.episodes import EpisodeSampler
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError
from rlpipe.jobs.continuation import guard_windows, training_mix
from rlpipe.jobs.job_config import ContinuationSpec
from rlpipe.jobs.lineage import Parent

INDEX = pd.date_range("2024-01-01", periods=1000, freq="h", tz="UTC")
SIM = SimConfig(episode_bars=50, reset_margin_bars=10)


def parent(trained_until: int, validation: list[tuple[int, int]] | None = None) -> Parent:
    """A parent whose family trained on bars [0, trained_until] of INDEX."""
    stamp = [str(INDEX[0]), str(INDEX[trained_until])]
    val = [[str(INDEX[a]), str(INDEX[b])] for a, b in validation or []]
    return Parent("models:/p/1", "1", "r", 0, 1000, {}, None, "PPO", [stamp], "0D", val)  # type: ignore[arg-type]


def test_latest_keeps_only_the_bars_after_the_ancestors_training():
    mix = training_mix(ContinuationSpec("latest"), parent(599), [(0, 800)], INDEX, SIM)
    assert mix.ranges == [(600, 800)] and mix.shares is None and mix.text.startswith("latest: 200 bars")


def test_mix_draws_the_recent_share_of_episodes_from_the_newer_bars():
    mix = training_mix(ContinuationSpec("mix", 0.7), parent(599), [(0, 800)], INDEX, SIM)
    assert mix.ranges == [(600, 800), (0, 600)] and mix.shares == pytest.approx([0.7, 0.3])
    sampler = EpisodeSampler(mix.ranges, SIM, mix.shares)
    rng = np.random.default_rng(0)
    starts, ends, _ = np.array([sampler.sample(rng) for _ in range(4000)]).T
    recent = starts >= 600
    assert abs(recent.mean() - 0.7) < 0.03
    assert (ends[~recent] <= 600 - 1 - 10).all()  # an older episode never runs into the newer bars


def test_without_newer_bars_latest_is_refused_and_mix_trains_on_what_there_is():
    with pytest.raises(ConfigError, match=r"continuation\.data=latest: .*no episode's worth of bars after"):
        training_mix(ContinuationSpec("latest"), parent(799), [(0, 800)], INDEX, SIM)
    mix = training_mix(ContinuationSpec("mix"), parent(799), [(0, 800)], INDEX, SIM)
    assert mix.ranges == [(0, 800)] and mix.shares is None and "older bars only" in mix.text
    assert training_mix(ContinuationSpec("all"), parent(599), [(0, 800)], INDEX, SIM).shares is None


def test_bad_continuation_values_name_their_key():
    with pytest.raises(ConfigError, match=r"continuation\.data='newest'"):
        ContinuationSpec("newest").check()
    with pytest.raises(ConfigError, match=r"continuation\.recent_fraction=1\.5"):
        ContinuationSpec("mix", 1.5).check()


def test_the_guard_scores_on_the_parents_validation_slices_when_it_recorded_them():
    own = [Window(Slice("v", "validation", "bull", INDEX[900], INDEX[950]), 900, 951)]
    windows, where = guard_windows(parent(599, [(620, 700)]), own, INDEX)
    assert [(w.lo, w.hi) for w in windows] == [(620, 701)] and where == "the parent's validation slices"
    windows, where = guard_windows(parent(599), own, INDEX)
    assert windows == own and "recorded none" in where
    later = pd.date_range("2030-01-01", periods=10, freq="h", tz="UTC")
    windows, where = guard_windows(parent(599, [(620, 700)]), own, INDEX.append(later)[-5:])
    assert windows == own and "not in this data" in where
