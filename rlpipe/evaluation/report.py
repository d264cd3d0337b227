"""The run report (markdown + JSON) following DESIGN.md's report template."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.gates.rules import GateResult
from rlpipe.types import JsonDict, Metrics

ROLE_TITLES = {"train": "Train", "validation": "Validation", "test": "Test"}


def json_safe(value: Any) -> Any:
    """Replace non-finite floats by None (JSON has no NaN/inf) recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def build_report(
    model: dict[str, Any],
    results: Sequence[SliceResult],
    aggregates: dict[str, Metrics],
    gates: Sequence[GateResult],
    verdict: str,
    reason: str,
    pending: Sequence[str] = ("seed_stability", "deflated_sharpe", "pbo"),
    decisions: dict[str, str] | None = None,
) -> tuple[str, JsonDict]:
    """Render the report as markdown and as a JSON-ready dict."""
    data: JsonDict = {
        "model": model,
        "slices": [
            {
                "slice": r.slice,
                "role": r.role,
                "regime": r.regime,
                "policy": r.policy,
                "start": r.start,
                "end": r.end,
                **r.metrics,
            }
            for r in results
        ],
        "aggregates": aggregates,
        "gates": {
            g.name: {"passed": g.passed, "value": g.value, "threshold": g.threshold, "rule": g.rule}
            for g in gates
        },
        "pending_gates": list(pending),
        "decisions": dict(decisions or {}),
        "decision": {"verdict": verdict, "reason": reason},
    }
    lines = [
        f"# Run report: {model.get('name', '')}",
        "",
        "Model: "
        + ", ".join(
            f"{k}={model[k]}" for k in ("name", "seed", "timesteps", "env", "reward", "agent") if k in model
        ),
        "",
    ]
    bh = {r.slice: r.metrics["total"] for r in results if r.policy == "buy_and_hold"}
    for role in ("train", "validation", "test"):
        rows = [r for r in results if r.role == role and r.policy == AGENT]
        if not rows:
            continue
        lines += [
            f"## {ROLE_TITLES[role]} slices",
            "",
            "| slice | regime | trades | win/loss | max drawdown | pnl (no fees) | fees | total "
            "| vs buy&hold | sharpe |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            m = r.metrics
            lines.append(
                f"| {r.slice} | {r.regime} | {m['trades']:.0f} | {m['wins']:.0f}/{m['losses']:.0f} | "
                f"{pct(m['max_drawdown'])} | {pct(m['pnl_before_fees'])} | {pct(m['fees'])} | "
                f"{pct(m['total'])} | {pct(m['total'] - bh.get(r.slice, math.nan))} | {num(m['sharpe'])} |"
            )
        agg = aggregates.get(role, {})
        if agg and role == "test":
            a = {
                k: agg.get(k, math.nan)
                for k in (
                    "positive_slices",
                    "slices",
                    "sharpe_min",
                    "sharpe_max",
                    "sharpe_mean",
                    "sharpe_std",
                    "worst_slice_total",
                    "best_slice_total",
                    "profit_factor",
                    "beats_buy_and_hold",
                )
            }
            lines += [
                "",
                f"Per-fold analysis: positive folds {num(a['positive_slices'], 0)}/{num(a['slices'], 0)}; "
                f"Sharpe {num(a['sharpe_min'])} to {num(a['sharpe_max'])}, mean {num(a['sharpe_mean'])} "
                f"(+/- {num(a['sharpe_std'])}); return {pct(a['worst_slice_total'])} to "
                f"{pct(a['best_slice_total'])}; profit factor {num(a['profit_factor'])}; "
                f"beats buy-and-hold on {pct(a['beats_buy_and_hold'])} of folds.",
            ]
        if agg:
            lines += [
                "",
                f"Positive slices {agg['positive_slices']:.0f}/{agg['slices']:.0f}, worst slice "
                f"{pct(agg['worst_slice_total'])}, best-slice share {num(agg['best_slice_share'])}.",
            ]
        lines.append("")
    base = [r for r in results if r.role == "test" and r.policy != AGENT]
    if base:
        lines += [
            "## Passive baselines on the test slices (same fills and fees)",
            "",
            "| slice | policy | trades | max drawdown | total |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {r.slice} | {r.policy} | {r.metrics['trades']:.0f} | {pct(r.metrics['max_drawdown'])} | "
            f"{pct(r.metrics['total'])} |"
            for r in base
        ]
        lines.append("")
    lines += ["## Gates", ""]
    lines += [f"- {g.name}: {'Y' if g.passed else 'N'} (value {num(g.value)}; rule: {g.rule})" for g in gates]
    lines += [f"- {p}: pending (judged by the sweep-level step across seeds)" for p in pending]
    missing = (decisions or {}).get("regimes_missing", "none")
    if missing != "none":
        lines += [
            "",
            f"**Regime coverage:** the test slices miss {missing}, which the data offers: the verdict "
            "can be retest at best; add test windows for it.",
        ]
    if decisions:
        lines += [
            "",
            "Classification: "
            + decisions.get("classification", "n/a")
            + "; deployment decision: "
            + decisions.get("deployment", "n/a"),
        ]
    lines += ["", f"## Decision: {verdict}", "", reason, ""]
    return "\n".join(lines), json_safe(data)


def pct(x: float) -> str:
    """A fraction as a signed percentage; n/a for a missing or non-finite value."""
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:+.2f}%"


def num(x: float, digits: int = 2) -> str:
    """A number with `digits` decimals; n/a for a missing or non-finite value."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"
