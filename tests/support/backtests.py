"""Backtests on hand-made hourly markets: the market, its windows and fees, constant policies, one
result picked out, and a three-role run (train, validation, two tests) judged by the run gates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rlpipe.data.slices import Slice, Window
from rlpipe.envs.market import Market
from rlpipe.envs.sim import LONG
from rlpipe.envs.sim_config import SimConfig
from rlpipe.evaluation.backtest import Policy, SliceResult, aggregates, backtest
from rlpipe.gates.rules import GatesConfig, run_gates, run_verdict

MAKER, TAKER = 0.0002, 0.0006


T0 = pd.Timestamp("2021-01-01", tz="UTC")


HOUR = pd.Timedelta(hours=1)


def market(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    features: np.ndarray | None = None,
    half_spread: float = 0.05,
) -> Market:
    n = len(close)
    feats = np.zeros((n, 0), np.float32) if features is None else features.astype(np.float32)
    return Market(
        high=high,
        low=low,
        close=close,
        bid=close - half_spread,
        ask=close + half_spread,
        features=feats,
        hours_per_bar=1.0,
        bars_per_year=365.25 * 24,
    )


def rising(n: int = 8, dip: float = 1.5) -> Market:
    """close 100, 101, ...; each low dips `dip` under its close (1.5: under the last bid)."""
    close = 100.0 + np.arange(n, dtype=float)
    return market(close, close + 0.5, close - dip)


def window(name: str, lo: int, hi: int, role: str = "test", regime: str = "bull") -> Window:
    return Window(Slice(name, role, regime, T0 + lo * HOUR, T0 + (hi - 1) * HOUR), lo, hi)


def cfg(**kw: float) -> SimConfig:
    return SimConfig(maker_fee=MAKER, taker_fee=TAKER, **kw)  # type: ignore[arg-type]


def always(action: int) -> Policy:
    return lambda obs: np.full(len(obs), action, np.int64)


def hours(n: int) -> pd.DatetimeIndex:
    """The bar times of an n-bar market built here: hourly from T0, the times `window` uses."""
    return pd.date_range(T0, periods=n, freq="h")


def by(results: list[SliceResult], policy: str, slice_: str | None = None) -> SliceResult:
    (r,) = [r for r in results if r.policy == policy and (slice_ is None or r.slice == slice_)]
    return r


ROLES = ("train", "validation", "test")


def three_role_run() -> tuple[list[SliceResult], list[Window]]:
    """An always-long agent on a rising hourly market: one train, one validation and two test slices."""
    windows = [
        window("train_1", 0, 10, role="train"),
        window("val_1", 10, 15, role="validation", regime="sideways"),
        window("test_1", 15, 22),
        window("test_2", 22, 30, regime="bear"),
    ]
    sim_cfg = cfg(stake=1.0, max_stake=1.0)
    return backtest(rising(30), sim_cfg, windows, always(LONG), seed=0, index=hours(30)), windows


def judged(gates_cfg: GatesConfig, coverage: float = 1.0) -> tuple:
    """The three-role run, its aggregates per role, its gates and its (verdict, reason)."""
    results, _ = three_role_run()
    aggs = {role: aggregates(results, role) for role in ROLES}
    gates = run_gates(aggs["test"], gates_cfg, coverage=coverage)
    return results, aggs, gates, *run_verdict(gates)
