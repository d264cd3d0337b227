"""Reward specs (config group `reward`), computed only from fills that could have happened.

- `pnl`: change in equity before fees, as a fraction of equity before the step (shows why
  fees matter: an agent trained on it churns);
- `pnl_fees`: the same after maker/taker fees and rebates;
- `shaped`: `pnl_fees` plus time penalties (holding longer than `hold_limit_hours`, flat longer
  than `flat_limit_hours`, and a terminal penalty on an episode's loss), whose strength follows a
  punishment-suppression curriculum: within each of `curriculum_cycles` equal parts of training,
  strength ramps linearly from 0 to `curriculum_scaling` at speed `curriculum_rate` (rate 2 reaches
  full strength halfway through a cycle).

Every term is returned separately so its share can be inspected in `info`. A reward reads only
the explicit `StepState` of a step (built by the simulator) and the training progress it is given,
never the simulator itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlpipe.errors import ConfigError
from rlpipe.types import BoolArray, FloatArray

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


@dataclass(slots=True)
class PositionClock:
    """How long each env has been in a position or flat, after the step (arrays of shape (N,))."""

    in_position: BoolArray
    """Some stake is open."""
    held_hours: FloatArray
    """Age of the oldest open stake, in hours (meaningful where `in_position`)."""
    flat_hours: FloatArray
    """Hours since the position was last closed (meaningful where not `in_position`)."""


@dataclass(slots=True)
class StepState:
    """What a reward may read about one batched step (arrays of shape (N,))."""

    pnl: FloatArray
    """The step's change in equity before fees."""
    fees: FloatArray
    """The fees of the step (negative for rebates)."""
    equity0: FloatArray
    """Equity before the step (rewards are fractions of it)."""
    equity: FloatArray
    """Equity after the step."""
    done: BoolArray
    """Envs whose episode ended with this step."""
    clock: PositionClock | None = None
    """Position durations; needed only where `needs_clock` says so (it costs a pass over the slots)."""


def needs_clock(cfg: RewardConfig) -> bool:
    """Whether the reward reads the position clock of `StepState` (only the shaped penalties do)."""
    return cfg.kind == "shaped"


def compute_reward(
    cfg: RewardConfig, state: StepState, progress: float
) -> tuple[FloatArray, dict[str, FloatArray]]:
    """Reward and its separate terms for one batched step.

    Args:
        cfg: the reward spec.
        state: the step's outcome; its `clock` must be set when `needs_clock(cfg)`.
        progress: training progress in [0, 1], the position in the penalty curriculum.

    Raises:
        ValueError: the reward needs the position clock and `state.clock` is None.
    """
    scale = cfg.scale / np.maximum(state.equity0, 1e-12)
    pnl = state.pnl * scale
    fees = -state.fees * scale
    terms = {"pnl": pnl, "fees": fees}
    if cfg.kind == "pnl":
        return pnl, terms
    reward = pnl + fees
    if cfg.kind == "shaped":
        terms.update(_penalties(cfg, state, curriculum_strength(cfg, progress)))
        reward = reward + terms["hold_penalty"] + terms["flat_penalty"] + terms["terminal_penalty"]
    return reward, terms


def _penalties(cfg: RewardConfig, state: StepState, strength: float) -> dict[str, FloatArray]:
    clock = state.clock
    if clock is None:
        raise ValueError("the shaped reward reads the position clock: set StepState.clock")
    over_held = (clock.in_position & (clock.held_hours > cfg.hold_limit_hours)).astype(np.float64)
    over_flat = (~clock.in_position & (clock.flat_hours > cfg.flat_limit_hours)).astype(np.float64)
    loss = np.where(state.done, np.maximum(0.0, 1.0 - state.equity), 0.0)
    return {
        "hold_penalty": -strength * cfg.hold_penalty * over_held,
        "flat_penalty": -strength * cfg.flat_penalty * over_flat,
        "terminal_penalty": -strength * cfg.terminal_penalty * loss * cfg.scale,
    }
