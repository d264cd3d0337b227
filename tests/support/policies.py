"""A pickle payload that shows whether it ran, and positions held in the simulator as a policy's
position columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rlpipe.data.features import FeatureStats, normalise, raw_features
from rlpipe.envs.market import make_market
from rlpipe.envs.sim import HOLD, BatchSim
from rlpipe.envs.sim_config import SimConfig


class Payload:
    """Unpickling this creates `marker`: the shape of a code-execution payload in a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def held_positions(
    bars: pd.DataFrame, stats: FeatureStats, env: SimConfig, spread_bps: float, k: int = 5
) -> tuple[pd.DataFrame, np.ndarray]:
    """Envs opened long, short or flat `k` bars before each bar (from bar k on) and held to it.

    Returns their state in natural units (the policy's position columns, indexed by bar time) and
    the simulator's observations of them, one row per such bar.
    """
    n = len(bars)
    rows = np.arange(k, n - 1)
    sim = BatchSim(make_market(bars, normalise(raw_features(bars), stats), spread_bps), env, None, len(rows))
    sides = np.array([1, -1, 0])[rows % 3]
    sim.reset_rows(np.arange(len(rows)), rows - k, np.full(len(rows), n - 1), sides)
    for _ in range(k):
        sim.step(np.full(len(rows), HOLD))
    hpb, held = sim.m.hours_per_bar, sides != 0
    cost = (sim.slot_qty * sim.slot_px).sum(axis=1)
    value = (sim.slot_qty * sim.m.close[sim.t][:, None]).sum(axis=1)
    position = pd.DataFrame({
        "side": sides.astype(float),
        "open_stake": (sim.slot_qty > 0).sum(axis=1) * env.stake,
        "unrealised": np.where(held, sides * (value - cost) / np.where(held, cost, 1.0), 0.0),
        "hours_since_open": np.where(held, (sim.t - sim.last_open_t) * hpb, 0.0),
        "avg_open_hours": np.where(held, (sim.t - sim.slot_t[:, 0]) * hpb, 0.0),
        "hours_since_close": np.where(held, 0.0, (sim.t - sim.last_close_t) * hpb),
    }, index=bars.index[rows])  # fmt: skip
    return position, sim.observe()
