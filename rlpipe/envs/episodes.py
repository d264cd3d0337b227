"""Episode sampling: random starts inside the training windows that cannot exploit the reset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError


class EpisodeSampler:
    """Draws (start bar, last bar, initial side) for one episode from a generator."""

    def __init__(
        self, windows: Sequence[tuple[int, int]], cfg: SimConfig, shares: Sequence[float] | None = None
    ) -> None:
        """Args: windows: training windows as bar ranges [lo, hi); cfg: episode parameters;
        shares: the probability of each window (a data mix); None: every admissible start bar
        equally likely."""
        self.cfg = cfg
        self.shares = None if shares is None else np.asarray(shares, float)
        self.lo = np.array([w[0] for w in windows], np.int64)
        self.hi = np.array([w[1] for w in windows], np.int64)
        # An episode's last bar stays `reset_margin_bars` before its window's last bar, so
        # ending (and the forced close) never happens at a slice boundary the agent could time.
        self.room = self.hi - 1 - cfg.reset_margin_bars - self.lo
        self.max_room = int(self.room.max()) if len(windows) else 0
        self._cum_fixed = np.cumsum(np.maximum(self.room - cfg.episode_bars + 1, 0))
        if len(windows) == 0 or self.max_room < cfg.episode_bars:
            longest = int(self.room.max()) if len(windows) else 0
            raise ConfigError(
                f"env.episode_bars={cfg.episode_bars} (+ env.reset_margin_bars={cfg.reset_margin_bars}) "
                f"does not fit in any training slice (longest usable: {longest} bars); "
                f"shorten the episode or lengthen the training slices"
            )

    def sample(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """One draw of a start uniform over every admissible start bar of every training window.

        (Equivalent to choosing a window weighted by its admissible starts, then a start in it,
        with one generator call instead of two: this runs at every auto-reset.)
        """
        cfg = self.cfg
        length = cfg.episode_bars
        if cfg.episode_bars_std > 0:
            length = min(max(round(rng.normal(cfg.episode_bars, cfg.episode_bars_std)), 2), self.max_room)
        if self.shares is not None:
            return self._sample_shared(rng, length)
        cum = (
            self._cum_fixed
            if length == cfg.episode_bars
            else np.cumsum(np.maximum(self.room - length + 1, 0))
        )
        u = int(rng.integers(cum[-1]))
        w = int(np.searchsorted(cum, u, side="right"))
        return self._with_side(rng, int(self.lo[w]) + u - (int(cum[w - 1]) if w else 0), length)

    def _sample_shared(self, rng: np.random.Generator, length: int) -> tuple[int, int, int]:
        """A window drawn by its share (among those the episode fits in), then a start in it."""
        starts = np.maximum(self.room - length + 1, 0)
        assert self.shares is not None
        p = np.where(starts > 0, self.shares, 0.0)
        w = int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))
        w = min(w, len(p) - 1)
        return self._with_side(rng, int(self.lo[w]) + int(rng.integers(starts[w])), length)

    def _with_side(self, rng: np.random.Generator, start: int, length: int) -> tuple[int, int, int]:
        cfg = self.cfg
        side = 0
        if cfg.random_initial_position > 0 and rng.random() < cfg.random_initial_position:
            side = 1 if rng.random() < 0.5 else -1
        return start, start + length, side
