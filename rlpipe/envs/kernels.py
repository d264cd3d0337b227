"""Compiled kernels of the batched simulator: the ledger of every env, one bar forward.

Why compiled: at 64 envs a numpy expression costs ~0.3 us whatever the array size, and one
management step with fills needs well over a hundred of them; written as a per-env ledger and
compiled with numba, the whole batch steps in a few microseconds. The state still lives in
numpy arrays owned by `BatchSim` (one row per env); these functions only read and update them.
The loop over envs is compiled, not Python, so the hot path has no interpreter loop.

Semantics (the same for every env): an order decided at the close of bar t rests at bar t's bid
(buy) or ask (sell) and fills only if bar t+1 trades through it (low < bid, or high > ask).
A fill that opposes the open side closes stake (all slots, or the oldest one); any other fill
opens a new slot of `stake` x equity while the open stake stays within `max_stake`. When an
episode reaches its last bar, what is still open is closed as a taker at that bar's close.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
from numba import njit

from rlpipe.types import OBSERVATION_CLIP

log = logging.getLogger(__name__)

HOLD, LONG, SHORT = 0, 1, 2

# The state is packed into a few matrices (one column per env) because numba checks the type of
# every argument on every call: 10 arguments instead of 35 is most of the call's cost at 64 envs.
# Rows of the float state F:
CASH, QTY, EQUITY, FEES, REALISED, TURNOVER, GROSS_WIN, GROSS_LOSS, EQUITY_PREV, STEP_PNL, STEP_FEES = range(
    11
)
N_FLOAT = 11
# Rows of the integer state IS:
T, END, START, TRADES, WINS, FILL_COUNT, LAST_OPEN_T, LAST_CLOSE_T, STEP_FILLS = range(9)
N_INT = 9
# Rows of the flags B:
DONE, TERMINATED = range(2)
# Rows of the price matrix P:
HIGH, LOW, CLOSE, BID, ASK = range(5)
# Entries of the parameter vector:
STAKE, MAX_STAKE, CLOSE_ALL, MAKER_FEE, TAKER_FEE = range(5)
# Entries of the observation parameter vector:
MANAGEMENT, O_STAKE, O_MAX_STAKE, HOURS_PER_BAR, UNREALISED_SCALE, HOURS_SCALE = range(6)


@njit(cache=True, inline="always")
def _close_slot(i, k, px, fee_rate, F, IS, slot_qty, slot_px, slot_fee):
    side = 1.0 if F[QTY, i] > 0 else -1.0
    q = slot_qty[i, k]
    gross = side * q * (px - slot_px[i, k])
    exit_fee = q * px * fee_rate
    net = gross - slot_fee[i, k] - exit_fee
    F[CASH, i] += side * q * px - exit_fee
    F[QTY, i] -= side * q
    F[FEES, i] += exit_fee
    F[TURNOVER, i] += q * px
    F[REALISED, i] += gross
    IS[TRADES, i] += 1
    if net > 0:
        IS[WINS, i] += 1
        F[GROSS_WIN, i] += net
    else:
        F[GROSS_LOSS, i] -= net
    slot_qty[i, k] = 0.0
    slot_fee[i, k] = 0.0


@njit(cache=True)
def _close(i, px, fee_rate, close_all, t1, F, IS, slot_qty, slot_px, slot_t, slot_fee):
    n_slots = slot_qty.shape[1]
    if close_all:
        for k in range(n_slots):
            if slot_qty[i, k] > 0:
                _close_slot(i, k, px, fee_rate, F, IS, slot_qty, slot_px, slot_fee)
    else:
        oldest = -1
        for k in range(n_slots):
            if slot_qty[i, k] > 0 and (oldest < 0 or slot_t[i, k] < slot_t[i, oldest]):
                oldest = k
        if oldest >= 0:
            _close_slot(i, oldest, px, fee_rate, F, IS, slot_qty, slot_px, slot_fee)
    still_open = False
    for k in range(n_slots):
        if slot_qty[i, k] > 0:
            still_open = True
    if not still_open:
        F[QTY, i] = 0.0  # no slot left means flat: clear float dust of partial closes
        IS[LAST_CLOSE_T, i] = t1


@njit(cache=True)
def step_batch(actions, P, params, F, IS, B, slot_qty, slot_px, slot_t, slot_fee):
    """Advance every env one bar (see the module docstring); writes the per-step outputs."""
    n_slots = slot_qty.shape[1]
    stake, max_stake, close_all = params[STAKE], params[MAX_STAKE], params[CLOSE_ALL] > 0
    for i in range(actions.shape[0]):
        t0 = IS[T, i]
        t1 = t0 + 1
        a = actions[i]
        F[EQUITY_PREV, i] = F[EQUITY, i]
        fees0 = F[FEES, i]
        filled = (a == LONG and P[LOW, t1] < P[BID, t0]) or (a == SHORT and P[HIGH, t1] > P[ASK, t0])
        IS[STEP_FILLS, i] = 0
        if filled:
            px = P[BID, t0] if a == LONG else P[ASK, t0]
            direction = 1.0 if a == LONG else -1.0
            if F[QTY, i] * direction < 0:
                _close(i, px, params[MAKER_FEE], close_all, t1, F, IS, slot_qty, slot_px, slot_t, slot_fee)
                IS[STEP_FILLS, i] = 1
            else:
                n_open = 0
                free = -1
                for k in range(n_slots):
                    if slot_qty[i, k] > 0:
                        n_open += 1
                    elif free < 0:
                        free = k
                if free >= 0 and (n_open + 1) * stake <= max_stake + 1e-9:
                    q = stake * F[EQUITY, i] / px
                    fee = q * px * params[MAKER_FEE]
                    F[CASH, i] -= direction * q * px + fee
                    F[QTY, i] += direction * q
                    F[FEES, i] += fee
                    F[TURNOVER, i] += q * px
                    slot_qty[i, free] = q
                    slot_px[i, free] = px
                    slot_t[i, free] = t1
                    slot_fee[i, free] = fee
                    IS[LAST_OPEN_T, i] = t1
                    IS[STEP_FILLS, i] = 1
        IS[FILL_COUNT, i] += IS[STEP_FILLS, i]
        IS[T, i] = t1
        done = t1 >= IS[END, i]
        if done and F[QTY, i] != 0:
            _close(i, P[CLOSE, t1], params[TAKER_FEE], True, t1, F, IS, slot_qty, slot_px, slot_t, slot_fee)
        F[EQUITY, i] = F[CASH, i] + F[QTY, i] * P[CLOSE, t1]
        F[STEP_FEES, i] = F[FEES, i] - fees0
        F[STEP_PNL, i] = F[EQUITY, i] - F[EQUITY_PREV, i] + F[STEP_FEES, i]  # before fees
        B[TERMINATED, i] = F[EQUITY, i] <= 0
        B[DONE, i] = done


@njit(cache=True)
def observe_batch(features, close, F, IS, slot_qty, slot_px, slot_t, op, out):
    """Observation rows: features at the current bar, then the position state, within +-`OBSERVATION_CLIP`.

    The position variables and their order are those of `rlpipe.envs.layout.POSITION_VARS`
    (baseline 5, management 7); keep the two in step. Durations are in hours / `hours_scale`.
    """
    n_feat = features.shape[1]
    hpb, hours_scale = op[HOURS_PER_BAR], op[HOURS_SCALE]
    for i in range(IS.shape[1]):
        ti = IS[T, i]
        for j in range(n_feat):
            out[i, j] = features[ti, j]
        price = close[ti]
        n_open = 0
        cost = 0.0
        value = 0.0
        age = 0.0
        for k in range(slot_qty.shape[1]):
            q = slot_qty[i, k]
            if q > 0:
                n_open += 1
                cost += q * slot_px[i, k]
                value += q * price
                age += (ti - slot_t[i, k]) * hpb
        qty = F[QTY, i]
        side = 1.0 if qty > 0 else (-1.0 if qty < 0 else 0.0)
        unreal = side * (value - cost) / cost if cost > 0 else 0.0
        held = (ti - IS[LAST_OPEN_T, i]) * hpb if n_open > 0 else 0.0
        flat = (ti - IS[LAST_CLOSE_T, i]) * hpb if n_open == 0 else 0.0
        j = n_feat
        out[i, j] = 1.0 if side > 0 else 0.0
        out[i, j + 1] = 1.0 if side < 0 else 0.0
        if op[MANAGEMENT] > 0:
            out[i, j + 2] = n_open * op[O_STAKE] / op[O_MAX_STAKE]
            out[i, j + 3] = unreal * op[UNREALISED_SCALE]
            out[i, j + 4] = (age / n_open if n_open > 0 else 0.0) / hours_scale
            out[i, j + 5] = held / hours_scale
            out[i, j + 6] = flat / hours_scale
            last = j + 7
        else:
            out[i, j + 2] = unreal * op[UNREALISED_SCALE]
            out[i, j + 3] = held / hours_scale
            out[i, j + 4] = flat / hours_scale
            last = j + 5
        for c in range(n_feat, last):
            out[i, c] = min(OBSERVATION_CLIP, max(-OBSERVATION_CLIP, out[i, c]))


def warm_up() -> None:
    """Compile (or load from cache) the kernels, so the first real step is fast.

    A cache file left truncated by a process killed while writing it would otherwise break
    every later run: such a cache is dropped and the kernels are compiled afresh.
    """
    try:
        _call_all()
    except (EOFError, pickle.UnpicklingError, OSError) as exc:
        log.warning("numba cache of rlpipe kernels unreadable (%s); recompiling", exc)
        for f in Path(__file__).parent.joinpath("__pycache__").glob("kernels.*.nb*"):
            f.unlink(missing_ok=True)
        _call_all()


def _call_all() -> None:
    n, k, bars = 1, 1, 3
    F = np.zeros((N_FLOAT, n))
    IS = np.zeros((N_INT, n), np.int64)
    IS[END] = 1
    slots = (np.zeros((n, k)), np.zeros((n, k)), np.zeros((n, k), np.int64), np.zeros((n, k)))
    step_batch(np.zeros(n, np.int64), np.ones((5, bars)), np.array([1.0, 1.0, 1.0, 0.0, 0.0]), F, IS,
               np.zeros((2, n), np.bool_), *slots)  # fmt: skip
    observe_batch(np.zeros((bars, 1), np.float32), np.ones(bars), F, IS, slots[0], slots[1], slots[2],
                  np.ones(6), np.zeros((n, 8), np.float32))  # fmt: skip
