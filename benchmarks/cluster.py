"""`make bench-cluster`: what a job costs beyond its training on Ray, against joblib, on this machine.

The same N-job sweep (`experiment=smoke`, T steps each) into one PostgreSQL tracking server
(`make server`'s), launched twice: with `hydra/launcher=joblib hydra.launcher.n_jobs=W` and with
`hydra/launcher=ray_cluster` on a local Ray cluster of W one-CPU nodes (`make cluster`'s: a head and
W-1 nodes joined to it). Per launcher: the command's wall time, the time from the sweep's parent run
to its first job run (workers starting and importing), and per job `time/learn_s` and
`time/overhead_s` (the job's time outside `learn()`: data, evaluation, gates, MLflow, registry), as
the runs recorded them (`force=true`: every launch trains its jobs, none reuses an earlier launch's
runs). `--repeat R` launches each R times, alternating. Results also go to
bench_results/cluster.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from rlpipe import ray_cluster
from rlpipe.jobs.naming import sweep_id_for
from rlpipe.server import tracking_server as server
from rlpipe.server.postgres import free_port

ROOT = Path(__file__).resolve().parents[1]


def sweep(
    folder: Path, uri: str, jobs: int, timesteps: int, launcher: list[str], env: dict
) -> dict[str, Any]:
    """One sweep through the CLI; its wall time and what its runs recorded."""
    seeds = ",".join(str(s) for s in range(1, jobs + 1))
    cmd = [
        sys.executable, "-m", "rlpipe.train", "-m", "experiment=smoke", f"seed={seeds}",
        f"timesteps={timesteps}", "tracking=server", f"tracking.uri={uri}", f"hydra.sweep.dir={folder}",
        f"checkpoint.dir={folder}/ckpt", "force=true", *launcher,
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(launcher)} failed:\n{proc.stderr[-3000:]}")
    client, sweep_id = MlflowClient(uri), sweep_id_for(str(folder))
    exp = client.get_experiment_by_name("rlpipe").experiment_id
    found = client.search_runs([exp], filter_string=f"tags.`rlpipe.sweep_id` = '{sweep_id}'")
    runs = [r for r in found if r.data.tags["rlpipe.kind"] == "job"]
    (parent,) = [r for r in found if r.data.tags["rlpipe.kind"] == "sweep"]
    runs.sort(key=lambda r: r.info.start_time)
    return {
        "wall_s": wall,
        "to_first_job_s": (runs[0].info.start_time - parent.info.start_time) / 1000.0,
        "learn_s": [r.data.metrics["time/learn_s"] for r in runs],
        "overhead_s": [r.data.metrics["time/overhead_s"] for r in runs],
        "run_s": [(r.info.end_time - r.info.start_time) / 1000.0 for r in runs],
        "nodes": len({r.data.tags["rlpipe.ray_node"] for r in runs if "rlpipe.ray_node" in r.data.tags}),
    }


def measure(tmp: Path, args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Start the server and the cluster, launch each sweep `args.repeat` times, stop both."""
    uri = server.start(tmp / "server", port=free_port())
    results: dict[str, list[dict[str, Any]]] = {"joblib": [], "ray": []}
    try:
        address = ray_cluster.start(tmp / "ray", port=free_port(), nodes=args.workers, num_cpus=1)
        env = {**os.environ, "RLPIPE_ROOT": str(ROOT), "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}
        launchers = {
            "joblib": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.workers}"],
            "ray": ["hydra/launcher=ray_cluster"],
        }
        for i in range(args.repeat):
            for name, overrides in launchers.items():
                print(f"{name} #{i + 1} ...", flush=True)
                results[name].append(
                    sweep(tmp / f"{name}-{i}", uri, args.jobs, args.timesteps, overrides, env)
                )
    finally:
        ray_cluster.stop(tmp / "ray")
        server.stop(tmp / "server")
    return results


def report(results: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    print(f"\n{args.jobs} jobs x {args.timesteps} steps, {args.workers} at once, one PostgreSQL server")
    print(f"{'launcher':8s} {'wall s':>7s} {'to 1st job':>10s} {'learn s/job':>12s} "
          f"{'outside learn s/job (first, rest)':>34s} {'nodes':>5s}")  # fmt: skip
    for name, tries in results.items():
        for x in tries:
            first = sorted(x["overhead_s"][: args.workers])  # each worker's first job pays its warm-up
            rest = x["overhead_s"][args.workers :]
            outside = f"{statistics.mean(x['overhead_s']):5.1f} ({'/'.join(f'{v:.1f}' for v in first)}, "
            outside += f"{statistics.mean(rest):.1f})" if rest else "-)"
            print(f"{name:8s} {x['wall_s']:7.1f} {x['to_first_job_s']:10.1f} "
                  f"{statistics.mean(x['learn_s']):12.2f} {outside:>34s} {x['nodes']:5d}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4)
    ap.add_argument("--timesteps", type=int, default=512)
    ap.add_argument("--workers", type=int, default=2, help="joblib's n_jobs, and the cluster's one-CPU nodes")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlpipe-cluster-", ignore_cleanup_errors=True) as tmp:
        results = measure(Path(tmp), args)
    report(results, args)
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "cluster.json").write_text(json.dumps({"args": vars(args), **results}, indent=2))


if __name__ == "__main__":
    main()
