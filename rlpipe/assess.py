"""Backtest a policy on slices, judge it, and log the evidence: shared by training and re-evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rlpipe.data.slices import Slice, SliceSpec, Window, regimes_offered
from rlpipe.envs.market import Market
from rlpipe.envs.sim import SimConfig
from rlpipe.evaluation.backtest import AGENT, Policy, SliceResult, aggregates, backtest, curves_frame
from rlpipe.evaluation.plots import slice_plots
from rlpipe.evaluation.report import build_report
from rlpipe.gates.rules import GateResult, GatesConfig, classify, deployment, fitness, run_gates, run_verdict
from rlpipe.tracking import runs
from rlpipe.types import Metrics


@dataclass
class Assessment:
    """A policy's backtest over the slices and what the run gates made of it."""

    results: list[SliceResult]
    aggregates: dict[str, Metrics]
    gates: list[GateResult]
    verdict: str
    reason: str
    decisions: dict[str, str]
    regimes_missing: set[str]


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
    """Backtest on every window, aggregate per role, apply the run gates and decisions."""
    results = backtest(market, sim_cfg, windows, policy, seed)
    roles = dict.fromkeys(w.slice.role for w in windows)
    aggs = {role: aggregates(results, role) for role in roles}
    offered = regimes_offered(
        slices,
        df["close"].to_numpy(float),
        slice_spec.coverage_window(slices, df.index),
        slice_spec.regime_threshold,
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
    return Assessment(results, aggs, gates, verdict, reason, decisions, offered - tested)


def log_assessment(a: Assessment, model: dict[str, Any], step: int) -> None:
    """Log metrics, report, curves and plots of an assessment to the active run."""
    metrics = {
        f"{r.role}/{r.slice}/{k}": v for r in a.results if r.policy == AGENT for k, v in r.metrics.items()
    }
    metrics.update(
        {
            f"{r.role}/{r.slice}/baseline_{r.policy}_total": r.metrics["total"]
            for r in a.results
            if r.policy != AGENT
        }
    )
    metrics.update({f"{role}/{k}": v for role, agg in a.aggregates.items() for k, v in agg.items()})
    metrics.update({f"gate/{g.name}": float(g.passed) for g in a.gates})
    runs.log_metrics(metrics, step=step)
    md, js = build_report(model, a.results, a.aggregates, a.gates, a.verdict, a.reason, decisions=a.decisions)
    runs.log_text(md, "report/report.md")
    runs.log_dict(js, "report/report.json")
    runs.log_table(curves_frame(a.results), "curves/equity.parquet")
    with runs.scratch_dir() as tmp:
        runs.log_files(slice_plots(a.results, Path(tmp) / "plots"), "plots")
    runs.set_tags(
        {
            "rlpipe.verdict": a.verdict,
            "rlpipe.verdict_reason": a.reason,
            "rlpipe.classification": a.decisions["classification"],
            "rlpipe.deployment": a.decisions["deployment"],
            "rlpipe.regimes_missing": a.decisions["regimes_missing"],
        }
    )
