"""`make bench-routine`: the weekly routine replayed over `--steps` weeks (default 8) with a
scaled-down weekly allocation, through the real CLI, on the embedded market.

Each step is `python -m rlpipe.train -m experiment=weekly` at `--budget` training steps (default
1.2M: `--explorers` 2, `--refiners` 1 and the champion continuation, each on seeds 1 and 6, so 8
jobs a week, on the joblib launcher with `--jobs` 2 at once) on the data cut at its as-of date;
the champion at that moment paper trades the next week, and a continued champion's parent the
same week beside it. The routine preset (`--preset`, default `default`, conf/routine/<preset>.yaml)
sets everything but the sweep: its first date and period, and the walk-forward slice overrides
its own sweep carries (`slices.*` entries of its `routine.sweep`), which are added to the weekly
sweep here, so a change to the preset's slices reaches this benchmark.

Printed per step: as-of date, champion version and its role (explorer, refiner, champion
continuation), the week's total after fees, buy-and-hold, child minus parent, and the step's wall
time split into training, scoring, paper trading, registry and the rest (`rlpipe.jobs.routine_times`);
then each step's run verdicts (why a week had no champion) and the totals. Results also go to
bench_results/routine.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir

from benchmarks.length import job_runs
from rlpipe.cli.schemas import register_configs
from rlpipe.reports.routine_report import PARTS, Week

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("wall", *PARTS)


def slice_overrides(preset: str) -> list[str]:
    """The `slices.*` overrides of the routine preset's own sweep (the routine sets slices=walk_forward)."""
    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("routine", overrides=[f"routine={preset}"])
    return [str(o) for o in cfg.routine.sweep if str(o).lstrip("+~").split("=")[0].split(".")[0] == "slices"]


def weekly_sweep(args: argparse.Namespace, tmp: Path, slices: list[str]) -> list[str]:
    """Each step's sweep: the scaled-down weekly allocation with the preset's slice overrides."""
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []
    return [
        "experiment=weekly", f"weekly.budget={args.budget}", f"weekly.explorers={args.explorers}",
        f"weekly.refiners={args.refiners}", "weekly.champion=1", f"weekly.seeds=[{args.seeds}]",
        "progress_bar=false", "plots=false", f"checkpoint.dir={tmp}/states", *slices, *launcher,
    ]  # fmt: skip


def _row(w: Week) -> str:
    champion = f"v{w.champion}" if w.champion else "flat"
    vs = w.child_minus_parent
    child = f"{100 * vs:+.2f} pp (v{w.parent})" if vs is not None else "-"
    times = " ".join(f"{w.times[p]:>7.1f}" for p in COLUMNS) if w.times else ""
    return (f"{w.step:>4} {w.asof[:16]:>16} {champion:>8} {w.role_label:>22} {100 * w.total:>+7.2f}% "
            f"{100 * w.hold_total:>+7.2f}% {child:>16} {times}")  # fmt: skip


def replay(args: argparse.Namespace, tmp: Path, sweep: list[str]) -> tuple[list[Week], float]:
    """Run the routine through the CLI, printing each step as its ledger entry appears."""
    quoted = ",".join(f"'{o}'" for o in sweep)
    cmd = [sys.executable, "-m", "rlpipe.routine", f"routine={args.preset}", f"routine.steps={args.steps}",
           f"routine.sweep=[{quoted}]", f"routine.dir={tmp}/routine", f"tracking.uri=sqlite:///{tmp}/mlflow.db",
           f"hydra.run.dir={tmp}/outputs"]  # fmt: skip
    print(" ".join(cmd[1:]), flush=True)
    head = (
        f"{'step':>4} {'as of':>16} {'champion':>8} {'role':>22} {'week':>8} {'hold':>8} {'child-parent':>16}"
    )
    print(head, " ".join(f"{p:>7}" for p in COLUMNS), flush=True)
    ledger, shown, log = tmp / "routine" / "routine.json", 0, tmp / "routine.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        while True:
            done = proc.poll() is not None
            weeks = _weeks(ledger)
            for w in weeks[shown:]:
                print(_row(w), flush=True)
            shown = len(weeks)
            if done:
                break
            time.sleep(2.0)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"rlpipe.routine failed ({proc.returncode}):\n{log.read_text()[-4000:]}")
    return _weeks(ledger), wall


def _weeks(ledger: Path) -> list[Week]:
    try:
        return [Week(**w) for w in json.loads(ledger.read_text())["weeks"]]
    except (OSError, ValueError):  # not written yet (it is replaced atomically)
        return []


def verdicts(uri: str) -> dict[int, dict[str, int]]:
    """Per step, its job runs' verdicts: how many ran, passed their run gates, and each sweep verdict."""
    out: dict[int, dict[str, int]] = {}
    for r in job_runs(uri):
        step = int(r.data.tags["rlpipe.sweep_id"].split("-")[1])  # step-<k>-<hash>
        counts = out.setdefault(step, {"runs": 0, "passed_run_gates": 0})
        counts["runs"] += 1
        counts["passed_run_gates"] += r.data.tags.get("rlpipe.verdict") == "pass"
        sweep = f"sweep_{r.data.tags.get('rlpipe.sweep_verdict') or 'none'}"
        counts[sweep] = counts.get(sweep, 0) + 1
    return out


def totals(weeks: list[Week], wall: float) -> dict[str, Any]:
    diffs = [d for w in weeks if (d := w.child_minus_parent) is not None]
    return {
        "command_wall_s": round(wall, 1),
        "routine_total": float(np.prod([1 + w.total for w in weeks]) - 1),
        "buy_and_hold_total": float(np.prod([1 + w.hold_total for w in weeks]) - 1),
        "weeks_with_champion": sum(w.champion is not None for w in weeks),
        "children_beat_parents": f"{sum(d > 0 for d in diffs)} of {len(diffs)}",
        "child_minus_parent_mean": float(np.mean(diffs)) if diffs else None,
        "seconds": {p: round(sum(w.times.get(p, 0.0) for w in weeks), 1) for p in COLUMNS},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--budget", type=int, default=1_200_000, help="weekly.budget: training steps per week")
    ap.add_argument("--explorers", type=int, default=2)
    ap.add_argument("--refiners", type=int, default=1)
    ap.add_argument("--seeds", default="1,6", help="weekly.seeds")
    ap.add_argument("--jobs", type=int, default=2, help="jobs at once (joblib); 1: the basic launcher")
    ap.add_argument("--preset", default="default", help="the routine preset (conf/routine/<preset>.yaml)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-routine-", ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        slices = slice_overrides(args.preset)
        print(f"routine={args.preset}: slice overrides from its sweep: {slices or 'none'}", flush=True)
        sweep = weekly_sweep(args, tmp, slices)
        weeks, wall = replay(args, tmp, sweep)
        judged = verdicts(f"sqlite:///{tmp}/mlflow.db")
    for step, counts in sorted(judged.items()):
        print(f"step {step} verdicts: " + ", ".join(f"{k} {v}" for k, v in counts.items()), flush=True)
    summary = totals(weeks, wall)
    s = summary["seconds"]
    print(f"totals: routine {100 * summary['routine_total']:+.2f}% vs buy-and-hold "
          f"{100 * summary['buy_and_hold_total']:+.2f}% over {len(weeks)} weeks, "
          f"{summary['weeks_with_champion']} with a champion; children beat parents "
          f"{summary['children_beat_parents']}; command {wall:.1f} s = steps {s['wall']:.1f} s ("
          + ", ".join(f"{p} {s[p]:.1f}" for p in PARTS) + ") + start-up and report", flush=True)  # fmt: skip
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    rows = [{**_summary(w), "verdicts": judged.get(w.step, {})} for w in weeks]
    result = {"args": vars(args), "sweep": sweep, "weeks": rows, "totals": summary}
    (out / "routine.json").write_text(json.dumps(result, indent=1))


def _summary(w: Week) -> dict[str, Any]:
    return {"step": w.step, "asof": w.asof, "champion": w.champion, "role": w.role_label, "total": w.total,
            "buy_and_hold": w.hold_total, "parent": w.parent, "parent_total": w.parent_total,
            "seconds": {k: round(v, 2) for k, v in w.times.items()}}  # fmt: skip


if __name__ == "__main__":
    main()
