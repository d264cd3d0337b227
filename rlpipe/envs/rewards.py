"""Reward specs (config group `reward`), computed only from fills that could have happened.

- `pnl`: change in equity before fees, as a fraction of equity before the step (shows why
  fees matter: an agent trained on it churns);
- `pnl_fees`: the same after maker/taker fees and rebates;
- `shaped`: `pnl_fees` plus time penalties (holding longer than `hold_limit_hours`, flat longer
  than `flat_limit_hours`, and a terminal penalty on an episode's loss), whose strength follows a
  punishment-suppression curriculum: within each of `curriculum_cycles` equal parts of training,
  strength ramps linearly from 0 to `curriculum_scaling` at speed `curriculum_rate` (rate 2 reaches
  full strength halfway through a cycle).

Every term is returned separately so its share can be inspected in `info`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rlpipe.errors import ConfigError
from rlpipe.types import BoolArray, FloatArray

if TYPE_CHECKING:
    from rlpipe.envs.sim import BatchSim

KINDS = ("pnl", "pnl_fees", "shaped")


@dataclass
class RewardConfig:
    """Reward spec (config group `reward`)."""

    kind: str = "pnl_fees"
    """pnl, pnl_fees or shaped."""
    scale: float = 100.0
    """Multiplier on the PnL fraction (1% of equity -> 1.0 at the default)."""
    hold_limit_hours: float = 72.0
    """shaped: holding longer than this is penalised each step."""
    hold_penalty: float = 0.0
    """shaped: penalty per step beyond the holding limit (at full strength)."""
    flat_limit_hours: float = 72.0
    """shaped: staying flat longer than this is penalised each step."""
    flat_penalty: float = 0.0
    """shaped: penalty per step beyond the flat limit (at full strength)."""
    terminal_penalty: float = 0.0
    """shaped: multiplier on the episode's loss (fraction of capital) at its last step."""
    curriculum_rate: float = 1.0
    """shaped: ramp speed of penalty strength within a cycle (1: linear over the whole cycle)."""
    curriculum_cycles: int = 1
    """shaped: number of suppression cycles over training."""
    curriculum_scaling: float = 1.0
    """shaped: full penalty strength."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"reward.kind={self.kind!r}; expected one of {KINDS}")
        if self.curriculum_cycles < 1:
            raise ConfigError(f"reward.curriculum_cycles={self.curriculum_cycles}; must be >= 1")


def curriculum_strength(cfg: RewardConfig, progress: float) -> float:
    """Penalty strength at training progress in [0, 1] (see the module docstring)."""
    c = min(max(progress, 0.0) * cfg.curriculum_cycles, cfg.curriculum_cycles - 1e-9)
    phase = c - np.floor(c)
    return float(cfg.curriculum_scaling * min(1.0, phase * cfg.curriculum_rate))


def compute_reward(
    sim: BatchSim, step_pnl: FloatArray, step_fees: FloatArray, equity0: FloatArray, done: BoolArray
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Reward and its separate terms for one batched step.

    Args:
        sim: the simulator after the step (position state for the shaped penalties).
        step_pnl: the step's change in equity before fees.
        step_fees: the fees of the step (negative for rebates).
        equity0: equity before the step (rewards are fractions of it).
        done: envs whose episode ended with this step.
    """
    cfg = sim.reward_cfg
    scale = cfg.scale / np.maximum(equity0, 1e-12)
    pnl = step_pnl * scale
    fees = -step_fees * scale
    terms = {"pnl": pnl, "fees": fees}
    if cfg.kind == "pnl":
        return pnl, terms
    reward = pnl + fees
    if cfg.kind == "shaped":
        strength = curriculum_strength(cfg, sim.progress)
        hpb = sim.m.hours_per_bar
        occupied = sim.slot_qty > 0
        in_pos = occupied.any(axis=1)
        first_open = np.where(occupied, sim.slot_t, sim.t[:, None]).min(axis=1)
        held = (sim.t - first_open) * hpb  # age of the oldest open stake
        flat = (sim.t - sim.last_close_t) * hpb
        over_held = (in_pos & (held > cfg.hold_limit_hours)).astype(np.float64)
        over_flat = (~in_pos & (flat > cfg.flat_limit_hours)).astype(np.float64)
        terms["hold_penalty"] = -strength * cfg.hold_penalty * over_held
        terms["flat_penalty"] = -strength * cfg.flat_penalty * over_flat
        terms["terminal_penalty"] = (
            -strength
            * cfg.terminal_penalty
            * np.where(done, np.maximum(0.0, 1.0 - sim.equity), 0.0)
            * cfg.scale
        )
        reward = reward + terms["hold_penalty"] + terms["flat_penalty"] + terms["terminal_penalty"]
    return reward, terms
