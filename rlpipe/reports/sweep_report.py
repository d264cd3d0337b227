"""The sweep report (markdown + JSON): every configuration with its gates, every run, the registry moves.

Deterministic for a given recorded state, so running the sweep step twice writes the same report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rlpipe.gates.sweep_gates import ConfigDecision, SweepDecision
from rlpipe.reports.format import json_safe, num, pct
from rlpipe.reports.run_report import gate_dict
from rlpipe.tracking.rows import JobRow
from rlpipe.types import JsonDict

Transition = tuple[str, str, str]
"""(when, version, what) of one registry transition."""


def sweep_report(
    sweep_id: str, rows: Sequence[JobRow], d: SweepDecision, transitions: Sequence[Transition]
) -> tuple[str, JsonDict]:
    """The sweep report as markdown and JSON."""
    n_failed = sum(not r.finished for r in rows)
    skipped = [r for r in rows if r.finished and r.sweep_verdict == "skipped"]
    pbo = num(d.pbo.pbo) if d.pbo else "n/a (one configuration)"
    lines = [
        f"# Sweep report: {sweep_id}",
        "",
        f"Runs: {len(rows)} ({n_failed} failed, {len(skipped)} skipped); configurations: {len(d.configs)}; "
        f"trials for the deflated Sharpe ratio (configurations the test slices judge, a search's "
        f"through its pick): "
        f"{d.n_trials}; probability of backtest overfitting: {pbo}.",
        "",
    ]
    lines += [f"- {r.run_name} ({r.run_id}) was not judged: {r.error}" for r in skipped]
    lines += [""] if skipped else []
    lines += _configurations_section(d.configs)
    lines += _runs_section(rows)
    lines += _registry_section(d, transitions)
    return "\n".join(lines) + "\n", json_safe(_report_data(sweep_id, rows, d, transitions))


def sweep_note(sweep_id: str, rows: Sequence[JobRow], d: SweepDecision, select_metric: str) -> str:
    """The sweep's description on its parent run in the MLflow UI: its runs, what it promoted, the
    champion with the validation score that chose it, and how to compare its runs."""
    failed = sum(not r.finished for r in rows)
    head = f"{len(rows)} run(s) of {len(d.configs)} configuration(s)"
    head += f", {failed} failed" if failed else ""
    promoted = f"{sum(c.verdict == 'promote' for c in d.configs)} configuration(s) promoted"
    pick = "no champion"
    if d.champion:
        c = d.champion
        name = next((r.run_name for r in rows if r.run_id == c.run_id), c.run_id)
        pick = (
            f"champion v{c.model_version}: {name} (validation {select_metric} "
            f"{num(c.validation.get(select_metric, math.nan))}, "
            f"test total {pct(c.test.get('total', math.nan))})"
        )
    why = f"\n\n{d.selection}" if d.selection else ""
    compare = f"Compare its runs: python -m rlpipe.runs compare sweep_id={sweep_id}"
    return f"{head} · {promoted} · {pick}{why}\n\n{compare}"


def _configurations_section(configs: Sequence[ConfigDecision]) -> list[str]:
    lines = [
        "## Configurations",
        "",
        "| configuration | hash | seeds passing | mean validation score | mean test total "
        "| Sharpe (mean of seeds) | DSR | seed_stability | classification | deployment | verdict | reason |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for c in configs:
        stable = "Y" if next(g for g in c.gates if g.name == "seed_stability").passed else "N"
        sharpe = float(np.mean([r.test.get("sharpe_mean", math.nan) for r in c.runs]))
        cls, dep = (c.candidate.classification, c.candidate.deployment) if c.candidate else ("-", "-")
        lines.append(
            f"| {c.label} | {c.config_hash} | {len(c.passing)}/{len(c.runs)} | {num(c.mean_validation)} "
            f"| {pct(c.mean_total)} "
            f"| {num(sharpe)} | {num(c.deflated_sharpe)} | {stable} | {cls} | {dep} | {c.verdict} "
            f"| {c.reason} |"
        )
    return lines


def _runs_section(rows: Sequence[JobRow]) -> list[str]:
    lines = [
        "",
        "## Runs",
        "",
        "| run | seed | status | run verdict | test total | max DD | positive | version |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.run_name} | {r.seed} | {r.status} | {r.verdict} | {pct(r.test_metric('total'))} | "
            f"{pct(r.test_metric('max_drawdown'), signed=False)} | {pct(r.test_metric('consistency'))} | "
            f"{r.model_version or '-'} |"
        )
    return lines


def _registry_section(d: SweepDecision, transitions: Sequence[Transition]) -> list[str]:
    champ = d.champion
    champion_text = f"v{champ.model_version} (run {champ.run_id})" if champ else "none promoted"
    lines = [
        "",
        "## Registry",
        "",
        f"Champion: {champion_text}.",
        f"Selection (validation only; test results gate, never rank): {d.selection or 'n/a'}.",
        f"Challengers: {', '.join('v' + r.model_version for r in d.challengers) or 'none'}.",
        "",
        "Transitions (when, version, stage and alias, by whom, why):",
        "",
    ]
    return lines + ([f"- {when} v{v}: {text}" for when, v, text in transitions] or ["- none"])


def _report_data(
    sweep_id: str, rows: Sequence[JobRow], d: SweepDecision, transitions: Sequence[Transition]
) -> JsonDict:
    champ = d.champion
    return {
        "sweep_id": sweep_id,
        "n_trials": d.n_trials,
        "pbo": d.pbo.pbo if d.pbo else None,
        "selection": d.selection,
        "configurations": [
            {
                "label": c.label,
                "config_hash": c.config_hash,
                "verdict": c.verdict,
                "reason": c.reason,
                "mean_validation_score": c.mean_validation,
                "mean_test_total": c.mean_total,
                "deflated_sharpe": c.deflated_sharpe,
                "gates": {g.name: gate_dict(g) for g in c.gates},
                "runs": [r.run_id for r in c.runs],
                "candidate_run": c.candidate.run_id if c.candidate else None,
            }
            for c in d.configs
        ],
        "champion": {"run_id": champ.run_id, "version": champ.model_version} if champ else None,
        "challengers": [{"run_id": r.run_id, "version": r.model_version} for r in d.challengers],
        "failed_runs": [r.run_id for r in rows if not r.finished],
        "transitions": [{"when": w, "version": v, "what": t} for w, v, t in transitions],
    }
