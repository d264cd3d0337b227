"""Batched backtest: every slice x every policy (agent + passive baselines) in one simulator batch.

Each row of the batch is one (policy, slice) pair, started at the slice's first bar and run to its
last. The agent's rows are driven by a deterministic policy; the baselines (buy-and-hold, flat,
a seeded random policy) go through exactly the same fills and fees, so a constant long bet in a
bull window shows up for what it is. Rows that finish early are parked on a harmless episode and
ignored, which keeps the simulator free of per-row branching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rlpipe.data.slices import Window
from rlpipe.envs.market import Market
from rlpipe.envs.sim import HOLD, LONG, BatchSim
from rlpipe.envs.sim_config import SimConfig
from rlpipe.evaluation import metrics as mx
from rlpipe.types import BASELINES, BoolArray, Float32Array, FloatArray, IntArray, Metrics

Policy = Callable[[Float32Array], IntArray]
AGENT = "agent"


@dataclass
class SliceResult:
    """One policy on one slice: its metrics and its curves, one value per bar of the slice."""

    slice: str
    role: str
    regime: str
    policy: str
    metrics: Metrics
    equity: FloatArray = field(repr=False)
    start: str = ""
    end: str = ""
    time: pd.DatetimeIndex | None = field(default=None, repr=False)
    """UTC timestamp of every bar of the curves; None when the backtest was given no index."""
    fees: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Fees paid up to each bar (fraction of the starting capital); ends at metrics["fees"]."""
    turnover: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False)
    """Notional traded up to each bar (multiples of the starting capital); ends at metrics["turnover"]."""
    bars_per_year: float = float("nan")
    """The annualisation factor of its Sharpe ratios."""


def backtest(
    market: Market,
    cfg: SimConfig,
    windows: Sequence[Window],
    policy: Policy | None,
    seed: int,
    baselines: Sequence[str] = BASELINES,
    index: pd.DatetimeIndex | None = None,
) -> list[SliceResult]:
    """Run `policy` (None: baselines only) and the baselines over every window in one batch.

    Args:
        market: prices and normalised features.
        cfg: the env parameters the agent was trained with (fills, fees, stake).
        windows: slices resolved to bar ranges.
        policy: maps observation rows to actions; must be deterministic for reproducible results.
        seed: seeds the random baseline.
        baselines: which passive baselines to run beside the agent.
        index: the timestamp of every bar of `market` (the data frame's index), which the
            results carry as `SliceResult.time`; None leaves `time` unset.

    Returns:
        One `SliceResult` per (policy, window), agent first.
    """
    times = None if index is None else _utc_index(index, market.n_bars)
    batch = _Batch.of(([AGENT] if policy is not None else []) + list(baselines), windows)
    sim = BatchSim(market, cfg, None, batch.n)  # rewards are for training: none computed here
    sim.reset_rows(np.arange(batch.n), batch.lo, batch.last)
    steps = int((batch.last - batch.lo).max())
    random_actions = _random_actions(batch, windows, seed, steps)
    run = _simulate(sim, batch, policy, random_actions, market.n_bars)
    return [_slice_result(batch, i, windows, run, market.bars_per_year, times) for i in range(batch.n)]


def _utc_index(index: pd.DatetimeIndex, n_bars: int) -> pd.DatetimeIndex:
    if len(index) != n_bars:
        raise ValueError(f"the index has {len(index)} timestamps for a market of {n_bars} bars")
    index = pd.DatetimeIndex(index)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


@dataclass
class _Batch:
    """Row layout: row r runs policy `names[pol[r]]` on `windows[win[r]]`, from bar lo[r] to last[r]."""

    names: list[str]
    pol: IntArray
    win: IntArray
    lo: IntArray
    last: IntArray

    @classmethod
    def of(cls, names: list[str], windows: Sequence[Window]) -> _Batch:
        w = len(windows)
        win = np.tile(np.arange(w), len(names))
        return cls(
            names=names,
            pol=np.repeat(np.arange(len(names)), w),
            win=win,
            lo=np.array([windows[i].lo for i in win], np.int64),
            last=np.array([windows[i].hi - 1 for i in win], np.int64),
        )

    @property
    def n(self) -> int:
        return len(self.pol)

    def rows_of(self, name: str) -> BoolArray:
        """Rows of the policy `name` (none if it is not in the batch)."""
        return self.pol == self.names.index(name) if name in self.names else np.zeros(self.n, bool)


@dataclass
class _Run:
    """What the batch left: curves per row and bar (NaN past a row's end), bars exposed, final ledgers."""

    curves: dict[str, FloatArray]
    """equity, cumulative fees and cumulative turnover, shape (rows, steps + 1)."""
    exposure: FloatArray
    final: dict[str, FloatArray]


_LEDGER = ("equity", "fees", "realised", "turnover", "trades", "wins", "gross_win", "gross_loss")
_CURVES = ("equity", "fees", "turnover")


def _random_actions(batch: _Batch, windows: Sequence[Window], seed: int, steps: int) -> IntArray:
    """The random baseline's actions per row and step (zeros for the other rows).

    One generator per slice (keyed by seed and slice name), so a slice's random baseline does not
    depend on which other slices share the batch.
    """
    actions = np.zeros((batch.n, steps), np.int64)
    for row in np.flatnonzero(batch.rows_of("random")):
        slice_key = [seed, *windows[batch.win[row]].slice.name.encode()]
        actions[row] = np.random.default_rng(slice_key).integers(0, 3, steps)
    return actions


def _simulate(
    sim: BatchSim, batch: _Batch, policy: Policy | None, random_actions: IntArray, n_bars: int
) -> _Run:
    """Step every row to its last bar; a finished row is parked on a harmless episode and ignored."""
    n, steps = batch.n, random_actions.shape[1]
    curves = {key: np.full((n, steps + 1), np.nan) for key in _CURVES}
    for key, curve in curves.items():
        curve[:, 0] = getattr(sim, key)
    exposure = np.zeros(n)
    active = np.ones(n, bool)
    final: dict[str, FloatArray] = {}
    agent_rows, random_rows = batch.rows_of(AGENT), batch.rows_of("random")
    actions = np.zeros(n, np.int64)
    const = {"buy_and_hold": LONG, "flat": HOLD}
    for k, name in enumerate(batch.names):
        if name in const:
            actions[batch.pol == k] = const[name]
    park_lo, park_last = np.zeros(n, np.int64), np.full(n, n_bars - 1)
    for step in range(1, steps + 1):
        if policy is not None and agent_rows.any():
            actions[agent_rows] = policy(sim.observe()[agent_rows])
        actions[random_rows] = random_actions[random_rows, step - 1]
        exposure += active & (sim.qty != 0)
        sim.step(actions)
        for key, curve in curves.items():
            curve[active, step] = getattr(sim, key)[active]
        ended = active & (sim.t >= sim.end)
        if ended.any():
            rows = np.flatnonzero(ended)
            for key in _LEDGER:
                final.setdefault(key, np.zeros(n))[rows] = getattr(sim, key)[rows]
            active &= ~ended
            sim.reset_rows(rows, park_lo[rows], park_last[rows])
    return _Run(curves, exposure, final)


def _slice_result(
    batch: _Batch,
    row: int,
    windows: Sequence[Window],
    run: _Run,
    bars_per_year: float,
    times: pd.DatetimeIndex | None,
) -> SliceResult:
    win = windows[batch.win[row]]
    curve, fees, turnover = (run.curves[k][row, : win.bars] for k in _CURVES)
    ledger = {k: v[row] for k, v in run.final.items()}
    return SliceResult(
        slice=win.slice.name,
        role=win.slice.role,
        regime=win.slice.regime,
        policy=batch.names[batch.pol[row]],
        metrics=_metrics(curve, ledger, run.exposure[row], bars_per_year),
        equity=curve,
        start=str(win.slice.start),
        end=str(win.slice.end),
        time=None if times is None else times[win.lo : win.hi],
        fees=fees,
        turnover=turnover,
        bars_per_year=bars_per_year,
    )


def _metrics(curve: FloatArray, f: dict[str, float], exposed_bars: float, bars_per_year: float) -> Metrics:
    trades, wins = int(f["trades"]), int(f["wins"])
    total = float(f["equity"] - 1.0)
    return {
        "trades": float(trades),
        "wins": float(wins),
        "losses": float(trades - wins),
        "win_rate": mx.win_rate(wins, trades),
        "max_drawdown": mx.max_drawdown(curve),
        "pnl_before_fees": total + float(f["fees"]),
        "fees": float(f["fees"]),
        "total": total,
        "sharpe": mx.sharpe(mx.returns(curve), bars_per_year),
        "profit_factor": mx.profit_factor(float(f["gross_win"]), float(f["gross_loss"])),
        "gross_win": float(f["gross_win"]),
        "gross_loss": float(f["gross_loss"]),
        "exposure": exposed_bars / max(len(curve) - 1, 1),
        # sampling error of an annualised Sharpe estimated from this many bars (Lo 2002, iid case)
        "sharpe_se": float(np.sqrt(bars_per_year / max(len(curve) - 1, 1))),
        "turnover": float(f["turnover"]),
    }


def aggregates(results: Sequence[SliceResult], role: str = "test") -> Metrics:
    """Across the agent's slices (folds) of `role`: the per-fold analysis.

    consistency (positive-fold fraction), positive/total fold counts, worst and best fold
    total, best-fold share of the net total, Sharpe range / mean / std across folds (and the std
    in units of a fold Sharpe's sampling error: ~1 means the folds differ no more than noise), the
    profit factor of all closed trades, the fraction of folds that beat buy-and-hold after
    fees and the edge over it (the folds' totals minus buy-and-hold's, summed).
    """
    agent = [r for r in results if r.policy == AGENT and r.role == role]
    totals = [r.metrics["total"] for r in agent]
    bh = {r.slice: r.metrics["total"] for r in results if r.policy == "buy_and_hold" and r.role == role}
    excess = [r.metrics["total"] - bh[r.slice] for r in agent if r.slice in bh]
    if not agent:
        return {}
    sharpes = np.array([r.metrics["sharpe"] for r in agent], dtype=float)
    return {
        "consistency": mx.consistency(totals),
        "positive_slices": float(sum(t > 0 for t in totals)),
        "slices": float(len(totals)),
        "worst_slice_total": float(np.min(totals)),  # np.min/np.max: NaN-propagating
        "best_slice_total": float(np.max(totals)),
        "best_slice_share": mx.best_slice_share(totals),
        "total": float(np.sum(totals)),
        "mean_total": float(np.mean(totals)),
        "max_drawdown": float(np.max([r.metrics["max_drawdown"] for r in agent])),
        "sharpe_mean": float(np.mean(sharpes)),
        "sharpe_std": float(np.std(sharpes, ddof=1)) if len(sharpes) > 1 else 0.0,
        "sharpe_dispersion": float(
            np.std(sharpes, ddof=1) / np.mean([r.metrics.get("sharpe_se", np.nan) for r in agent])
        )
        if len(sharpes) > 1
        else 0.0,
        "sharpe_min": float(np.min(sharpes)),
        "sharpe_max": float(np.max(sharpes)),
        "profit_factor": mx.profit_factor(
            float(sum(r.metrics.get("gross_win", np.nan) for r in agent)),
            float(sum(r.metrics.get("gross_loss", np.nan) for r in agent)),
        ),
        "beats_buy_and_hold": float(np.mean([e > 0 for e in excess])) if excess else float("nan"),
        "excess_total": float(np.sum(excess)) if excess else float("nan"),  # edge over buy-and-hold
    }


def curves_frame(results: Sequence[SliceResult]) -> pd.DataFrame:
    """The curves of every (slice, policy) in long format, one row per bar.

    Columns: slice, role, regime, policy, bar (0 at the slice's first bar), time (UTC; NaT
    without an index), equity (start = 1), fees and turnover (cumulative, as in `SliceResult`)."""
    sizes = [len(r.equity) for r in results]
    cols: dict[str, Any] = {
        key: np.repeat(np.array([getattr(r, key) for r in results], object), sizes)
        for key in ("slice", "role", "regime", "policy")
    }
    cols["bar"] = np.concatenate([np.arange(n) for n in sizes])
    times = [r.time if r.time is not None else pd.DatetimeIndex([pd.NaT] * n, tz="UTC") for r, n in
             zip(results, sizes, strict=True)]  # fmt: skip
    cols["time"] = times[0].append(times[1:]) if times else pd.DatetimeIndex([], tz="UTC")
    for key in _CURVES:
        parts = [getattr(r, key) for r in results]
        full = [c if len(c) == n else np.full(n, np.nan) for c, n in zip(parts, sizes, strict=True)]
        cols[key] = np.concatenate(full).astype(float)
    return pd.DataFrame(cols)
