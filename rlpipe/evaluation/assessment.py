"""Backtest a policy on its slices and judge it with the run gates (pure; training and re-evaluation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rlpipe.data.data_config import SliceSpec
from rlpipe.data.slices import Slice, Window, coverage_window, regimes_offered
from rlpipe.envs.market import Market
from rlpipe.envs.sim_config import SimConfig
from rlpipe.evaluation.backtest import Policy, SliceResult, aggregates, backtest
from rlpipe.gates.rules import GateResult, GatesConfig, classify, deployment, fitness, run_gates, run_verdict
from rlpipe.types import Metrics


@dataclass
class Assessment:
    """A policy's backtest over the slices and what the run gates made of it."""

    results: list[SliceResult]
    aggregates: dict[str, Metrics]
    """Per role (train, validation, test): the aggregates over the agent's slices."""
    gates: list[GateResult]
    verdict: str
    reason: str
    decisions: dict[str, str]
    """classification, deployment, and regimes_missing (comma-separated or 'none')."""

    @property
    def test(self) -> Metrics:
        return self.aggregates.get("test", {})


def assess(
    market: Market,
    sim_cfg: SimConfig,
    df: pd.DataFrame,
    slices: Sequence[Slice],
    windows: Sequence[Window],
    slice_spec: SliceSpec,
    gates_cfg: GatesConfig,
    policy: Policy,
    seed: int,
) -> Assessment:
    """Backtest on every window, aggregate per role, apply the run gates and decisions.

    The results carry the bar timestamps of `df` (the frame `market` was built from).
    """
    results = backtest(market, sim_cfg, windows, policy, seed, index=df.index)
    roles = dict.fromkeys(w.slice.role for w in windows)
    aggs = {role: aggregates(results, role) for role in roles}
    close = df["close"].to_numpy(float)
    offered = regimes_offered(
        slices, close, coverage_window(slice_spec, slices, df.index), slice_spec.regime_threshold
    )
    tested = {s.regime for s in slices if s.role == "test"}
    coverage = len(offered & tested) / len(offered) if offered else 1.0
    test = aggs.get("test", {})
    gates = run_gates(test, gates_cfg, coverage)
    verdict, reason = run_verdict(gates)
    decisions = {
        "classification": classify(test, gates_cfg),
        "deployment": deployment(test, gates_cfg),
        "regimes_missing": ",".join(sorted(offered - tested)) or "none",
    }
    test["fitness"] = fitness(test, gates_cfg)
    test["regime_coverage"] = coverage
    return Assessment(results, aggs, gates, verdict, reason, decisions)


def validate(
    market: Market, sim_cfg: SimConfig, windows: Sequence[Window], policy: Policy, seed: int
) -> Metrics:
    """The validation aggregates of `policy` (the validation windows only: a checkpoint's score).

    The same numbers `assess` gives for the validation role of the same policy; {} without
    validation windows.
    """
    val = [w for w in windows if w.slice.role == "validation"]
    if not val:
        return {}
    return aggregates(backtest(market, sim_cfg, val, policy, seed), "validation")
