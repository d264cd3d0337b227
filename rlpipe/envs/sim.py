"""The batched market simulator: maker fills, fees and accounting for N environments at once.

One simulator serves every view of the market (the gymnasium env is a batch of one, the SB3
VecEnv a batch of N, evaluation a batch of slices x policies), so they cannot drift apart.
All state is numpy arrays of shape (N,) or (N, K) for K position slots, owned here; the ledger
that updates them is compiled (`rlpipe.envs.kernels`), so the hot path has no Python loop over
environments.

Conventions: capital starts at 1.0 per environment; `qty` is signed units of the asset
(+ long, - short); equity = cash + qty * close. An order decided at the close of bar t rests at
bar t's bid (buy) or ask (sell) and fills only if bar t+1 trades through it (low < bid, or
high > ask). A fill that opposes the open side closes stake (the oldest slot, or all); any other
fill opens a new slot of `stake` x equity, as long as the open stake stays under `max_stake`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from rlpipe.envs import kernels
from rlpipe.envs.kernels import HOLD, LONG, SHORT
from rlpipe.envs.layout import layout_of
from rlpipe.envs.market import Market
from rlpipe.envs.rewards import PositionClock, RewardConfig, StepState, compute_reward, needs_clock
from rlpipe.envs.sim_config import SimConfig
from rlpipe.types import BoolArray, FloatArray, IntArray

__all__ = ["HOLD", "LONG", "SHORT", "BatchSim", "StepResult"]
_STATE_ARRAYS = ("_f", "_i", "_b", "slot_qty", "slot_px", "slot_t", "slot_fee")
"""The simulator's whole state: packed counters and balances, and the position slots."""


@dataclass
class StepResult:
    """Arrays returned by one batched step (all shape (N,))."""

    reward: FloatArray
    terminated: BoolArray
    truncated: BoolArray
    fills: IntArray
    terms: dict[str, FloatArray]
    done: BoolArray
    """terminated | truncated: the episode ended with this step."""


class BatchSim:
    """N trading environments over one market: state in numpy arrays, stepped by compiled kernels."""

    def __init__(self, market: Market, cfg: SimConfig, reward: RewardConfig | None, n: int) -> None:
        """Args: market; cfg: fills, fees and stake; reward: None computes no reward; n: batch size."""
        self.m, self.cfg, self.reward_cfg, self.n = market, cfg, reward, n
        self._clocked = reward is not None and needs_clock(reward)
        self._obs_dim = market.n_features + cfg.n_position_vars
        k = cfg.slots
        # Packed state (see rlpipe.envs.kernels); the named attributes are row views into it.
        self._f = np.zeros((kernels.N_FLOAT, n))
        self._i = np.zeros((kernels.N_INT, n), np.int64)
        self._b = np.zeros((2, n), bool)
        f, i = self._f, self._i
        self.cash, self.qty, self.equity = f[kernels.CASH], f[kernels.QTY], f[kernels.EQUITY]
        self.fees, self.realised, self.turnover = f[kernels.FEES], f[kernels.REALISED], f[kernels.TURNOVER]
        self.gross_win, self.gross_loss = f[kernels.GROSS_WIN], f[kernels.GROSS_LOSS]
        self.t, self.start = i[kernels.T], i[kernels.START]
        self.end = i[kernels.END]  # the episode's last bar, inclusive
        self.trades, self.wins, self.fill_count = i[kernels.TRADES], i[kernels.WINS], i[kernels.FILL_COUNT]
        self.last_open_t, self.last_close_t = i[kernels.LAST_OPEN_T], i[kernels.LAST_CLOSE_T]
        self.cash[:] = 1.0
        self.equity[:] = 1.0
        # The reward's view of a step: rows of the packed state, which the kernels update in place,
        # so a step only sets `done` (and the clock). Building it afresh would cost ~1 us a step.
        self._state = StepState(
            f[kernels.STEP_PNL], f[kernels.STEP_FEES], f[kernels.EQUITY_PREV], self.equity, np.zeros(n, bool)
        )
        self.slot_qty = np.zeros((n, k))
        self.slot_px = np.zeros((n, k))
        self.slot_t = np.zeros((n, k), np.int64)
        self.slot_fee = np.zeros((n, k))
        m = market
        self._prices = np.stack([m.high, m.low, m.close, m.bid, m.ask])
        self._params = np.array(
            [cfg.stake, cfg.max_stake, float(cfg.close_mode == "all"), cfg.maker_fee, cfg.taker_fee]
        )
        self._obs_params = np.array(
            [
                float(layout_of(cfg.kind) == "management"),
                cfg.stake,
                cfg.max_stake,
                m.hours_per_bar,
                cfg.unrealised_scale,
                cfg.hours_scale,
            ]
        )

    # ----------------------------------------------------------------- state
    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of every array the next step reads or writes (a resumable training state)."""
        return {k: getattr(self, k).copy() for k in _STATE_ARRAYS}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Write `get_state()`'s arrays back in place (the named attributes are views into them)."""
        for k in _STATE_ARRAYS:
            getattr(self, k)[...] = state[k]

    def rebind(self, market: Market) -> None:
        """Read prices and features from `market` from now on (a session's market grows bar by bar;
        the state, kept by bar position, stays)."""
        self.m = market
        self._prices = np.stack([market.high, market.low, market.close, market.bid, market.ask])

    def write_bar(self, t: int, prices: FloatArray) -> None:
        """Bar t's high, low, close, bid, ask, once it is known (the market's arrays already hold it)."""
        self._prices[:, t] = prices

    # ----------------------------------------------------------------- reset
    def reset_rows(
        self, rows: IntArray, start: IntArray, end: IntArray, init_side: IntArray | None = None
    ) -> None:
        """Start episodes for `rows` at bar `start`, ending at bar `end` (inclusive).

        `init_side` (+1/-1/0 per row) opens one stake at the start bar's close, without a fee,
        so the agent must manage a position it did not choose.
        """
        rows = np.asarray(rows, np.int64)
        self._f[:, rows] = 0.0  # every counter and balance of these envs starts afresh
        self._i[:, rows] = 0
        self._b[:, rows] = False
        self.slot_qty[rows] = 0.0
        self.slot_px[rows] = 0.0
        self.slot_fee[rows] = 0.0
        self.slot_t[rows] = 0
        self.cash[rows] = 1.0
        self.t[rows] = start
        self.start[rows] = start
        self.end[rows] = end
        self.last_close_t[rows] = start
        self.last_open_t[rows] = start
        if init_side is not None and np.any(init_side):
            r = rows[np.asarray(init_side) != 0]
            side = np.asarray(init_side)[np.asarray(init_side) != 0]
            px = self.m.close[self.t[r]]
            q = self.cfg.stake / px
            self.slot_qty[r, 0] = q
            self.slot_px[r, 0] = px
            self.slot_t[r, 0] = self.t[r]
            self.qty[r] = side * q
            self.cash[r] -= side * q * px
        self.equity[rows] = self.cash[rows] + self.qty[rows] * self.m.close[self.t[rows]]

    # ------------------------------------------------------------------ step
    def step(self, actions: IntArray, progress: float = 0.0) -> StepResult:
        """Advance every environment one bar; rows already past their end must not be stepped.

        Args:
            actions: one action per env (HOLD, LONG, SHORT).
            progress: training progress in [0, 1], for the reward curriculum.

        Returns:
            The step's arrays; without a reward spec the reward is zero and there are no terms.
        """
        kernels.step_batch(
            np.asarray(actions, dtype=np.int64),
            self._prices,
            self._params,
            self._f,
            self._i,
            self._b,
            self.slot_qty,
            self.slot_px,
            self.slot_t,
            self.slot_fee,
        )
        last_bar, terminated = self._b[kernels.DONE], self._b[kernels.TERMINATED]
        ended = last_bar | terminated
        if self.reward_cfg is None:
            reward: FloatArray = np.zeros(self.n)
            terms: dict[str, FloatArray] = {}
        else:
            state = self._state
            state.done = ended
            if self._clocked:
                state.clock = self.position_clock()
            reward, terms = compute_reward(self.reward_cfg, state, progress)
        fills = self._i[kernels.STEP_FILLS].copy()
        return StepResult(reward, terminated.copy(), last_bar & ~terminated, fills, terms, ended)

    def _open_stake(self) -> FloatArray:
        return (self.slot_qty > 0).sum(axis=1) * self.cfg.stake

    # ------------------------------------------------------- position state
    def position_clock(self) -> PositionClock:
        """Whether each env holds a position, the age of its oldest stake and its time flat, in hours."""
        hpb = self.m.hours_per_bar
        occupied = self.slot_qty > 0
        first_open = np.where(occupied, self.slot_t, self.t[:, None]).min(axis=1)
        return PositionClock(
            in_position=cast(BoolArray, occupied.any(axis=1)),
            held_hours=(self.t - first_open) * hpb,
            flat_hours=(self.t - self.last_close_t) * hpb,
        )

    def unrealised(self) -> FloatArray:
        """Open PnL at the current close, before exit fees."""
        price = self.m.close[self.t]
        return np.sign(self.qty) * (self.slot_qty * (price[:, None] - self.slot_px)).sum(axis=1)

    def observe(self) -> np.ndarray:
        """Observation rows: features at the current bar + position state, float32 in [-3, 3]."""
        m = self.m
        out = np.empty((self.n, self._obs_dim), np.float32)
        kernels.observe_batch(
            m.features,
            m.close,
            self._f,
            self._i,
            self.slot_qty,
            self.slot_px,
            self.slot_t,
            self._obs_params,
            out,
        )
        return out

    def position_vars(self) -> FloatArray:
        """The position/management state part of the observation (float64 view of `observe`)."""
        return self.observe()[:, self.m.n_features :].astype(np.float64)

    def info_arrays(self) -> dict[str, FloatArray]:
        """Diagnostics for engineers (never part of the observation)."""
        return {
            "equity": self.equity,
            "realised_pnl": self.realised,
            "unrealised_pnl": self.unrealised(),
            "fees": self.fees,
            "fills": self.fill_count.astype(np.float64),
            "open_stake": self._open_stake(),
        }
