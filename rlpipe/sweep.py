"""The sweep-level step: after a multirun (or by hand with `python -m rlpipe.promote`).

Reads the sweep's finished jobs from MLflow, applies the sweep gates (`rlpipe.gates.sweep`),
moves the registry, and writes the sweep report (markdown, JSON, comparison plot) to the sweep's
parent run. Running it twice changes nothing the second time: registry moves compare the desired
state with the current one, and the report is rebuilt from recorded state only.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from rlpipe.evaluation.plots import sweep_plot
from rlpipe.evaluation.report import json_safe, num, pct
from rlpipe.gates.rules import GatesConfig
from rlpipe.gates.sweep import RunRecord, SweepDecision, evaluate_sweep
from rlpipe.tracking import queries, registry, runs
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger(__name__)


def sweep_step(uri: str, experiment: str, model_name: str, sweep_id: str, cfg: GatesConfig) -> SweepDecision:
    """Judge sweep `sweep_id`, move the registry, and report to its parent run."""
    exp_id = ensure_experiment(uri, experiment)
    parent = runs.ensure_parent_run(exp_id, sweep_id)
    rows = queries.sweep_runs(uri, experiment, sweep_id)
    records = [_record(r, uri) for r in rows if r["status"] == "FINISHED"]
    decision = evaluate_sweep(records, cfg) if records else SweepDecision([], None, [], None, 0)

    why = {}
    for c in decision.configs:
        for r in c.runs:
            why[r.model_version] = f"sweep {sweep_id}: {c.verdict} ({c.reason})"
    champion = decision.champion.model_version if decision.champion else None
    if champion:
        best = next(c for c in decision.configs if c.candidate is decision.champion)
        why[champion] = f"sweep {sweep_id}: champion (configuration {best.label}, {best.reason})"
    registry.apply_sweep(model_name, sweep_id, champion, [r.model_version for r in decision.challengers], why)

    verdicts = {r.run_id: c.verdict for c in decision.configs for r in c.runs}
    for run_id, verdict in verdicts.items():
        runs.set_run_tags(run_id, {"rlpipe.sweep_verdict": verdict})
    versions = [r.model_version for c in decision.configs for r in c.runs if r.model_version]
    md, data = sweep_report(sweep_id, rows, decision, registry.history(model_name, versions))
    with runs.scratch_dir() as tmp:
        plot = sweep_plot(
            rows,
            verdicts,
            champion_run=decision.champion.run_id if decision.champion else None,
            path=Path(tmp) / "comparison.png",
        )
        runs.write_parent(
            parent,
            md,
            data,
            plot,
            _parent_metrics(rows, decision),
            {
                "rlpipe.champion_version": champion or "none",
                "rlpipe.promoted_configs": str(sum(c.verdict == "promote" for c in decision.configs)),
            },
        )
    log.info(
        "sweep %s: %d run(s), %d configuration(s), champion %s",
        sweep_id,
        len(rows),
        len(decision.configs),
        f"v{champion}" if champion else "none",
    )
    return decision


def _record(row: dict[str, Any], uri: str) -> RunRecord:
    curves = queries.equity_curves(row["run_id"], uri)
    test = curves[(curves["role"] == "test") & (curves["policy"] == "agent")]
    returns = [
        np.diff(g["equity"].to_numpy()) / g["equity"].to_numpy()[:-1]
        for _, g in test.groupby("slice", sort=False)
    ]
    return RunRecord(
        run_id=row["run_id"],
        config_hash=row["config_hash"],
        seed=int(row["seed"] or 0),
        run_verdict=row["verdict"],
        test=row["test"],
        classification=row["classification"],
        deployment=row["deployment"],
        returns=np.concatenate(returns) if returns else np.array([]),
        model_version=row["model_version"],
        label=row["run_name"].rsplit("-s", 1)[0],
        regimes_missing=row["regimes_missing"],
    )


def _parent_metrics(rows: list[dict[str, Any]], d: SweepDecision) -> dict[str, float]:
    return {
        "sweep/runs": float(len(rows)),
        "sweep/failed_runs": float(sum(r["status"] != "FINISHED" for r in rows)),
        "sweep/configurations": float(len(d.configs)),
        "sweep/promoted_configurations": float(sum(c.verdict == "promote" for c in d.configs)),
        "sweep/pbo": d.pbo.pbo if d.pbo else math.nan,
    }


def sweep_report(
    sweep_id: str, rows: list[dict[str, Any]], d: SweepDecision, transitions: list[tuple[str, str, str]]
) -> tuple[str, dict]:
    """The sweep report as markdown and JSON (deterministic for a given recorded state)."""
    n_failed = sum(r["status"] != "FINISHED" for r in rows)
    lines = [
        f"# Sweep report: {sweep_id}",
        "",
        f"Runs: {len(rows)} ({n_failed} failed); configurations (trials): {len(d.configs)}; "
        f"probability of backtest overfitting: {num(d.pbo.pbo) if d.pbo else 'n/a (one configuration)'}.",
        "",
        "## Configurations",
        "",
        "| configuration | hash | seeds passing | mean test total | Sharpe (mean of seeds) | DSR "
        "| seed_stability | classification | deployment | verdict | reason |",
        "|---|---|---:|---:|---:|---:|---|---|---|---|---|",
    ]
    for c in d.configs:
        g = {x.name: x for x in c.gates}
        sharpe = float(np.mean([r.test.get("sharpe_mean", math.nan) for r in c.runs]))
        cand = c.candidate
        cls, dep = (cand.classification, cand.deployment) if cand else ("-", "-")
        stable = "Y" if g["seed_stability"].passed else "N"
        lines.append(
            f"| {c.label} | {c.config_hash} | {len(c.passing)}/{len(c.runs)} | {pct(c.mean_total)} "
            f"| {num(sharpe)} | {num(c.deflated_sharpe)} | {stable} | {cls} | {dep} | {c.verdict} "
            f"| {c.reason} |"
        )
    lines += [
        "",
        "## Runs",
        "",
        "| run | seed | status | run verdict | test total | max DD | positive | version |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run_name']} | {r['seed']} | {r['status']} | {r['verdict']} | {pct(r['test_total'])} | "
            f"{pct(r['test_max_drawdown'])} | {pct(r['consistency'])} | {r['model_version'] or '-'} |"
        )
    champ = d.champion
    champion_text = f"v{champ.model_version} (run {champ.run_id})" if champ else "none promoted"
    lines += [
        "",
        "## Registry",
        "",
        f"Champion: {champion_text}.",
        f"Challengers: {', '.join('v' + r.model_version for r in d.challengers) or 'none'}.",
        "",
        "Transitions (when, version, stage and alias, by whom, why):",
        "",
    ]
    lines += [f"- {when} v{v}: {text}" for when, v, text in transitions] or ["- none"]
    data = {
        "sweep_id": sweep_id,
        "n_trials": d.n_trials,
        "pbo": d.pbo.pbo if d.pbo else None,
        "configurations": [
            {
                "label": c.label,
                "config_hash": c.config_hash,
                "verdict": c.verdict,
                "reason": c.reason,
                "mean_test_total": c.mean_total,
                "deflated_sharpe": c.deflated_sharpe,
                "gates": {
                    x.name: {"passed": x.passed, "value": x.value, "threshold": x.threshold, "rule": x.rule}
                    for x in c.gates
                },
                "runs": [r.run_id for r in c.runs],
                "candidate_run": c.candidate.run_id if c.candidate else None,
            }
            for c in d.configs
        ],
        "champion": {"run_id": champ.run_id, "version": champ.model_version} if champ else None,
        "challengers": [{"run_id": r.run_id, "version": r.model_version} for r in d.challengers],
        "failed_runs": [r["run_id"] for r in rows if r["status"] != "FINISHED"],
        "transitions": [{"when": w, "version": v, "what": t} for w, v, t in transitions],
    }
    return "\n".join(lines) + "\n", json_safe(data)
