"""Episode sampling: starts inside the training windows, the reset margin, lengths and initial sides."""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.envs.episodes import EpisodeSampler
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError


def test_episode_sampler_respects_windows_margin_length_and_initial_side() -> None:
    windows = [(0, 100), (200, 260)]
    cfg = SimConfig(episode_bars=30, episode_bars_std=5, reset_margin_bars=10, random_initial_position=0.4)
    sampler = EpisodeSampler(windows, cfg)
    rng = np.random.default_rng(0)
    draws = np.array([sampler.sample(rng) for _ in range(3000)])
    start, end, side = draws.T
    inside = [((lo <= start) & (end <= hi - 1 - 10)) for lo, hi in windows]
    assert (inside[0] | inside[1]).all()  # whole episode in one window, margin kept
    assert inside[0].any() and inside[1].any()
    length = end - start
    assert length.min() >= 2 and abs(length.mean() - 30) < 1.0 and 4 < length.std() < 6
    assert abs((side != 0).mean() - 0.4) < 0.05
    assert set(np.unique(side)) == {-1, 0, 1}


def test_episode_that_fits_no_window_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"env\.episode_bars=50 .*longest usable: 45 bars"):
        EpisodeSampler([(0, 70)], SimConfig(episode_bars=50, reset_margin_bars=24))
