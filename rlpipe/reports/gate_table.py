"""The gate table of a sweep for the comparison notebook: every run gate and configuration gate of
each job run, as "Y (0.80 > 0.50)" cells. Pure: it tabulates what `rlpipe.tracking.notebook_reads.
gate_records` read from the store."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from rlpipe.tracking.rows import SweepGates


def gate_frame(gates: SweepGates) -> pd.DataFrame:
    """Per job run: every run gate and the configuration's sweep gates, with the values judged.

    Each gate cell reads like "Y (0.80 > 0.50)": passed (Y) or failed (N), then the value the
    gate judged against its threshold (see `gate_text`). Run gates come from the run's
    `gate/<name>` metrics, their values and thresholds from its report/report.json; the
    configuration gates (seed_stability, deflated_sharpe, pbo, ...) from the parent's
    sweep/report.json. "-" means not recorded (a failed run, or a sweep step that has not run).

    Args:
        gates: `notebook_reads.gate_records(uri, experiment, sweep_id)`.

    Returns:
        Columns: run_id, run_name, seed, config_hash, the run gates, verdict, the configuration
        gates (prefixed `config_` if a name clashes with a run gate), sweep_verdict and reason.
        `frame.attrs["run_gates"]` and `frame.attrs["config_gates"]` list the two groups of gate
        columns; `frame.attrs["pbo"]` is the sweep-wide probability of backtest overfitting (None
        before the sweep step, or when it was not computed), `frame.attrs["pbo_rule"]` what the
        sweep step said of it ("not applicable: one configuration...", "cannot be computed: ...";
        "" before the sweep step).
    """
    report = gates.report
    run_gates = sorted({g for rec in gates.runs for g in rec.passed})
    by_run = {rid: c for c in report.get("configurations", []) for rid in c.get("runs", [])}
    names = sorted({g for c in report.get("configurations", []) for g in c.get("gates", {})})
    config_cols = {g: f"config_{g}" if g in run_gates else g for g in names}
    rows = []
    for rec in gates.runs:
        row = rec.row
        conf = by_run.get(row.run_id, {})
        out: dict[str, Any] = {k: getattr(row, k) for k in ("run_id", "run_name", "seed", "config_hash")}
        out.update({g: gate_cell(rec.reported.get(g, {}), rec.passed.get(g)) for g in run_gates})
        out["verdict"] = row.verdict
        conf_gates = conf.get("gates", {})
        out.update({col: gate_cell(conf_gates.get(g, {})) for g, col in config_cols.items()})
        out["sweep_verdict"] = conf.get("verdict", row.sweep_verdict or "-")
        out["reason"] = conf.get("reason", "")
        rows.append(out)
    columns = ["run_id", "run_name", "seed", "config_hash", *run_gates, "verdict"]
    frame = pd.DataFrame(rows, columns=[*columns, *config_cols.values(), "sweep_verdict", "reason"])
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    frame.attrs["run_gates"] = run_gates
    frame.attrs["config_gates"] = list(config_cols.values())
    frame.attrs["pbo"] = report.get("pbo")
    pbo_gates = [c["gates"]["pbo"] for c in report.get("configurations", []) if "pbo" in c.get("gates", {})]
    frame.attrs["pbo_rule"] = pbo_gates[0].get("rule", "") if pbo_gates else ""
    return frame


def gate_text(
    passed: Any, value: float | None = None, threshold: float | None = None, judged: bool = True
) -> str:
    """A gate as the gate table shows it: "Y (0.80 > 0.50)", "N (0.23 > 0.15)", "N (n/a vs 0.50)".

    Y or N is the recorded outcome; the parenthesis compares the judged value with the threshold
    as they stand (<, = or >), so the reader sees by how much a gate passed or failed. Values
    are shown with two decimals, or two significant digits under 0.01; "-" when not recorded,
    "n/a" for a gate that had nothing to judge (`judged` false: PBO with one configuration).
    """
    if passed is None or (isinstance(passed, float) and math.isnan(passed)):
        return "-"
    if not judged:
        return "n/a"
    mark = "Y" if bool(passed) else "N"
    v, t = _finite(value), _finite(threshold)
    if v is None and t is None:
        return mark
    if v is None or t is None:
        return f"{mark} ({_number(v)} vs {_number(t)})"
    return f"{mark} ({_number(v)} {'<' if v < t else '>' if v > t else '='} {_number(t)})"


def gate_cell(recorded: dict[str, Any], passed: Any = None) -> str:
    """`gate_text` of a gate as a report records it (`{"passed", "value", "threshold", "rule"}`, and
    `"judged": false` when it judged nothing); `passed` (a `gate/<name>` metric) overrides its flag.
    Reports written before `judged` (until 2026-12) mark such a gate only by a pass without a value;
    a gate whose value is missing fails, so no other gate reads so."""
    flag = recorded.get("passed") if passed is None else passed
    value = recorded.get("value")
    legacy = not (flag is True and _finite(value) is None)
    return gate_text(flag, value, recorded.get("threshold"), recorded.get("judged", legacy))


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _number(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.2f}" if x == 0 or abs(x) >= 0.01 else f"{x:.2g}"
