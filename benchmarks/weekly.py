"""`make bench-weekly`: the weekly allocation and population-based training at their real sizes.

1. weekly: `experiment=weekly` at `--budget` steps (default the full 35.5M: 15 explorers, 5
   refiners, 1 champion continuation, 2 seeds each, 4 candidate lengths per job) on the joblib
   launcher with `--jobs` parallel jobs, into a fresh store (the first week: the refiner and
   champion slots explore; their steps are the same): wall time, steps/s, the time in training,
   in scoring checkpoints and in the rest (data, backtests, gates, MLflow, registry).
2. pbt: `experiment=pbt` (`--population` x `--rounds` x `--interval`, basic launcher): per member
   and round, the job's wall time beyond training (data, state load/save, validation, MLflow;
   the last round also assesses, gates and registers), the sweeper's time between rounds
   (ranking, copies, MLflow records), and the time outside the jobs (process start and imports,
   Hydra composing each job, the sweep step and table).

Each figure is one run of the real CLI read back from the store it wrote; results also go to
bench_results/weekly.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from benchmarks.length import ROOT, job_runs, train
from benchmarks.scale import drawing_done


def weekly(tmp: Path, budget: int, jobs: int) -> dict[str, Any]:
    uri = f"sqlite:///{tmp}/weekly/mlflow.db"
    wall = train(
        "-m", "experiment=weekly", f"weekly.budget={budget}", "progress_bar=false", "plots=false",
        "hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}", f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp}/weekly/multirun", f"checkpoint.dir={tmp}/weekly/states",
    )  # fmt: skip
    drawing_done(uri)
    runs = job_runs(uri)
    m = [r.data.metrics for r in runs]
    steps = sum(int(r.data.params["timesteps"]) for r in runs)
    learn = sum(x["time/learn_s"] for x in m)
    scoring = sum(x["time/checkpoint_s"] for x in m)
    overhead = sum(x["time/overhead_s"] for x in m)
    roles: dict[str, int] = {}
    for r in runs:
        role = r.data.tags["rlpipe.weekly_role"].split("-")[0]
        roles[role] = roles.get(role, 0) + 1
    return {
        "budget": budget, "jobs_parallel": jobs, "runs": len(runs), "runs_by_role": roles, "steps": steps,
        "wall_s": round(wall, 1), "steps_per_s": round(steps / wall), "finished": sum(
            r.info.status == "FINISHED" for r in runs),
        "job_seconds": {"training": round(learn - scoring, 1), "checkpoint_scoring": round(scoring, 1),
                        "rest": round(overhead, 1)},
        "registered": sum(bool(r.data.tags.get("rlpipe.model_version")) for r in runs),
        # the week can not end sooner than its training spread over the parallel jobs (issue 20: <= 1.15x)
        "training_floor_s": round((learn - scoring) / jobs, 1),
        "wall_over_training_floor": round(wall / ((learn - scoring) / jobs), 3),
    }  # fmt: skip


def pbt(tmp: Path, population: int, rounds: int, interval: int) -> dict[str, Any]:
    uri = f"sqlite:///{tmp}/pbt/mlflow.db"
    wall = train(
        "-m", "experiment=pbt", f"pbt.population={population}", f"pbt.rounds={rounds}",
        f"pbt.interval={interval}", "progress_bar=false", "plots=false", f"tracking.uri={uri}",
        f"hydra.sweep.dir={tmp}/pbt/multirun",
    )  # fmt: skip
    drawing_done(uri)
    client = MlflowClient(uri)
    per_round: list[list[float]] = [[] for _ in range(rounds)]
    jobs_s = learn_s = 0.0
    for r in job_runs(uri):
        learn = {h.step: h.value for h in client.get_metric_history(r.info.run_id, "pbt/time/learn_s")}
        whole = {h.step: h.value for h in client.get_metric_history(r.info.run_id, "pbt/time/round_s")}
        for k in range(rounds):
            per_round[k].append(whole[k] - learn[k])
        learn_s += sum(learn.values())
        # the last round's job also tests, gates and registers: its whole time is learn + overhead
        jobs_s += (
            sum(whole[k] for k in range(rounds - 1)) + learn[rounds - 1] + r.data.metrics["time/overhead_s"]
        )
    last = [r.data.metrics["time/overhead_s"] for r in job_runs(uri)]
    ledger = json.loads((tmp / "pbt" / "multirun" / "pbt" / "pbt.json").read_text())
    return {
        "population": population, "rounds": rounds, "interval": interval, "wall_s": round(wall, 1),
        "training_s": round(learn_s, 1), "steps_per_s": round(population * rounds * interval / wall),
        "job_overhead_per_member_round_s": [round(sum(x) / len(x), 2) for x in per_round],
        "last_round_with_test_gates_registry_s": round(sum(last) / len(last), 2),
        "between_rounds_s": [round(x, 2) for x in ledger["between_s"]],
        "outside_jobs_s": round(wall - jobs_s - sum(ledger["between_s"]), 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=35_500_000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--interval", type=int, default=100_000)
    ap.add_argument("--skip-weekly", action="store_true")
    ap.add_argument("--skip-pbt", action="store_true")
    args = ap.parse_args()
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-", ignore_cleanup_errors=True) as tmp:
        if not args.skip_pbt:
            out["pbt"] = pbt(Path(tmp), args.population, args.rounds, args.interval)
            print(json.dumps(out["pbt"], indent=1), flush=True)
        if not args.skip_weekly:
            out["weekly"] = weekly(Path(tmp), args.budget, args.jobs)
            print(json.dumps(out["weekly"], indent=1), flush=True)
    results = ROOT / "bench_results"
    results.mkdir(exist_ok=True)
    (results / "weekly.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
