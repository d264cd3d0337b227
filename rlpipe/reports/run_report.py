"""The run report (markdown + JSON): model, slices per role, baselines, gates and the decision.

Template: Model (name, seed, timesteps, env, reward spec); Train / validation / test slices (per
slice trades, win/loss, max drawdown, pnl before fees, fees, total, edge over buy-and-hold,
Sharpe); the per-fold analysis of the test slices; passive baselines; Gates (Y/N with their
values); Decision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.gates.rules import GateResult
from rlpipe.gates.selection import LengthChoice
from rlpipe.reports.format import json_safe, num, pct
from rlpipe.reports.length import length_section
from rlpipe.types import ROLES, JsonDict, Metrics

ROLE_TITLES = {"train": "Train", "validation": "Validation", "test": "Test"}
SWEEP_GATES = ("seed_stability", "deflated_sharpe", "pbo")
"""Gates judged across seeds and trials by the sweep step, shown as pending in a run report."""
_FOLD_KEYS = (
    "positive_slices", "slices", "sharpe_min", "sharpe_max", "sharpe_mean", "sharpe_std",
    "worst_slice_total", "best_slice_total", "profit_factor", "beats_buy_and_hold",
)  # fmt: skip


@dataclass(frozen=True)
class ModelCard:
    """Who the report is about; fields that do not apply stay None and are left out."""

    name: str
    seed: int | None = None
    timesteps: int | None = None
    env: str | None = None
    reward: str | None = None
    agent: str | None = None
    config_hash: str | None = None
    run_id: str | None = None
    version: str | None = None
    source_run: str | None = None
    generation: int | None = None
    """0 for a model trained from scratch, its parent's + 1 for a continued one."""
    parent: str | None = None
    """The continued model's parent (`models:/<name>/<version>`)."""

    def as_dict(self) -> JsonDict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class RunReportInput:
    """Everything a run report shows (an assessment of one policy, and who it is)."""

    model: ModelCard
    results: Sequence[SliceResult]
    aggregates: dict[str, Metrics]
    gates: Sequence[GateResult]
    verdict: str
    reason: str
    decisions: dict[str, str]
    length: LengthChoice | None = None
    """The training lengths scored on validation and the one kept (None without checkpoints)."""


def build_report(r: RunReportInput, pending: Sequence[str] = SWEEP_GATES) -> tuple[str, JsonDict]:
    """Render the report as markdown and as a JSON-ready dict."""
    model = r.model.as_dict()
    data: JsonDict = {
        "model": model,
        "slices": [
            {
                "slice": s.slice,
                "role": s.role,
                "regime": s.regime,
                "policy": s.policy,
                "start": s.start,
                "end": s.end,
                **s.metrics,
            }
            for s in r.results
        ],
        "aggregates": r.aggregates,
        "gates": {g.name: gate_dict(g) for g in r.gates},
        "pending_gates": list(pending),
        "decisions": dict(r.decisions),
        "decision": {"verdict": r.verdict, "reason": r.reason},
    }
    if r.length is not None:
        data["training_length"] = r.length.as_dict()
    keys = ("name", "seed", "timesteps", "env", "reward", "agent", "generation", "parent")
    lines = [f"# Run report: {r.model.name}", ""]
    lines += ["Model: " + ", ".join(f"{k}={model[k]}" for k in keys if k in model), ""]
    bh = {s.slice: s.metrics["total"] for s in r.results if s.policy == "buy_and_hold"}
    if r.length is not None:
        lines += length_section(r.length)
    for role in ROLES:
        lines += _role_section(role, r.results, r.aggregates.get(role, {}), bh)
    lines += _baselines_section(r.results)
    lines += _gates_section(r.gates, pending, r.decisions)
    lines += ["", f"## Decision: {r.verdict}", "", r.reason, ""]
    return "\n".join(lines), json_safe(data)


def run_note(r: RunReportInput, select_metric: str | None = None) -> str:
    """The run's description in the MLflow UI (its run list and page): the verdict, the test total
    after fees and the validation score that ranks the run (`select_metric`), then why."""
    test, score = r.aggregates.get("test", {}), r.aggregates.get("validation", {}).get(select_metric or "")
    drawdown = test.get("max_drawdown", math.nan)
    parts = [r.verdict, f"test total {pct(test.get('total', math.nan))} after fees"]
    parts[-1] += f" (max drawdown {num(100 * drawdown)}%)" if math.isfinite(drawdown) else ""
    if select_metric:
        parts.append(f"validation {select_metric} {num(score)} ranks it")
    who = [f"seed {r.model.seed}"] if r.model.seed is not None else []
    who += [f"{r.model.timesteps} steps"] if r.model.timesteps is not None else []
    return " · ".join(parts + ([", ".join(who)] if who else [])) + f"\n\n{r.reason}"


def gate_dict(g: GateResult) -> JsonDict:
    """A gate's outcome as JSON: passed, the value judged, the threshold and the rule; `"judged": false`
    added when it had nothing to judge (`GateResult.judged`)."""
    out: JsonDict = {"passed": g.passed, "value": g.value, "threshold": g.threshold, "rule": g.rule}
    return out if g.judged else {**out, "judged": False}


def _role_section(role: str, results: Sequence[SliceResult], agg: Metrics, bh: dict[str, float]) -> list[str]:
    rows = [r for r in results if r.role == role and r.policy == AGENT]
    if not rows:
        return []
    lines = [
        f"## {ROLE_TITLES[role]} slices",
        "",
        "| slice | regime | trades | win/loss | max drawdown | pnl (no fees) | fees | total | vs buy&hold "
        "| sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        m = r.metrics
        lines.append(
            f"| {r.slice} | {r.regime} | {m['trades']:.0f} | {m['wins']:.0f}/{m['losses']:.0f} | "
            f"{pct(m['max_drawdown'], signed=False)} | {pct(m['pnl_before_fees'])} | {pct(m['fees'])} | "
            f"{pct(m['total'])} | {pct(m['total'] - bh.get(r.slice, math.nan))} | {num(m['sharpe'])} |"
        )
    if agg and role == "test":
        lines += ["", _fold_analysis(agg)]
    if agg:
        lines += [
            "",
            f"Positive slices {agg['positive_slices']:.0f}/{agg['slices']:.0f}, worst slice "
            f"{pct(agg['worst_slice_total'])}, best-slice share {num(agg['best_slice_share'])}.",
        ]
    return [*lines, ""]


def _fold_analysis(agg: Metrics) -> str:
    a = {k: agg.get(k, math.nan) for k in _FOLD_KEYS}
    return (
        f"Per-fold analysis: positive folds {num(a['positive_slices'], 0)}/{num(a['slices'], 0)}; "
        f"Sharpe {num(a['sharpe_min'])} to {num(a['sharpe_max'])}, mean {num(a['sharpe_mean'])} "
        f"(+/- {num(a['sharpe_std'])}); return {pct(a['worst_slice_total'])} to "
        f"{pct(a['best_slice_total'])}; profit factor {num(a['profit_factor'])}; "
        f"beats buy-and-hold on {pct(a['beats_buy_and_hold'])} of folds."
    )


def _baselines_section(results: Sequence[SliceResult]) -> list[str]:
    base = [r for r in results if r.role == "test" and r.policy != AGENT]
    if not base:
        return []
    lines = [
        "## Passive baselines on the test slices (same fills and fees)",
        "",
        "| slice | policy | trades | max drawdown | total |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.slice} | {r.policy} | {r.metrics['trades']:.0f} | "
        f"{pct(r.metrics['max_drawdown'], signed=False)} | {pct(r.metrics['total'])} |"
        for r in base
    ]
    return [*lines, ""]


def _gates_section(
    gates: Sequence[GateResult], pending: Sequence[str], decisions: dict[str, str]
) -> list[str]:
    lines = ["## Gates", ""]
    lines += [f"- {g.name}: {'Y' if g.passed else 'N'} (value {num(g.value)}; rule: {g.rule})" for g in gates]
    lines += [f"- {p}: pending (judged by the sweep-level step across seeds)" for p in pending]
    missing = decisions.get("regimes_missing", "none")
    if missing != "none":
        lines += [
            "",
            f"**Regime coverage:** the test slices miss {missing}, which the data offers: the verdict "
            "can be retest at best; add test windows for it.",
        ]
    if decisions:
        lines += [
            "",
            f"Classification: {decisions.get('classification', 'n/a')}; "
            f"deployment decision: {decisions.get('deployment', 'n/a')}",
        ]
    return lines
