"""`make bench-scale`: how a sweep scales out, measured side by side in one run on this machine.

1. launchers: the same N-job sweep (`experiment=seed_sweep`, T steps each) with the basic launcher
   and with `hydra/launcher=joblib` (W workers); wall time, speed-up, and the workers' start-up
   (the time from the sweep's parent run to its first job run, beyond the basic launcher's);
2. neighbours: one job's training steps/s alone, then beside a second identical job, with the
   thread bound (`threads=null`: cores / 2 each) and without it (every job takes every core);
3. stores: the same 3-seed sweep into a local sqlite file and into `make server`'s PostgreSQL +
   MLflow server (skipped without the `server` extra): wall time and per-run overhead.

Each figure is one run of real CLI commands (subprocesses), read back from the store they wrote.
Results also go to bench_results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> float:
    """Run `python -m <args>` from the project root; returns its wall time (s)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def runs(uri: str) -> tuple[list[Any], Any]:
    """(job runs, the sweep's parent run or None) of experiment `rlpipe` in the store at `uri`."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe").experiment_id
    jobs = client.search_runs([exp], filter_string="tags.`rlpipe.kind` = 'job'")
    parents = client.search_runs([exp], filter_string="tags.`rlpipe.kind` = 'sweep'")
    return jobs, (parents[0] if parents else None)


def drawing_done(uri: str, timeout: float = 300.0) -> None:
    """Wait until the processes a sweep left drawing (its runs' tear sheets, its comparison plot) are
    done with the store: the next measurement starts on a quiet machine, and a temporary store is
    not removed under them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs, parent = runs(uri)
        tags = [r.data.tags.get("rlpipe.tear_sheets") for r in jobs]
        tags += [parent.data.tags.get("rlpipe.sweep_plot")] if parent else []
        if not any(str(t).startswith("pending") for t in tags):  # `pending: after the sweep` too
            return
        time.sleep(0.5)


def sweep(tmp: Path, name: str, seeds: str, timesteps: int, uri: str | None, *extra: str) -> dict[str, Any]:
    uri = uri or f"sqlite:///{tmp}/{name}/mlflow.db"
    wall = cli(
        "rlpipe.train", "-m", "experiment=seed_sweep", f"seed={seeds}", f"timesteps={timesteps}",
        "progress_bar=false", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/{name}/multirun", *extra,
    )  # fmt: skip
    jobs, parent = runs(uri)
    first_job = min(r.info.start_time for r in jobs)
    return {
        "wall_s": wall,
        "jobs": len(jobs),
        "to_first_job_s": (first_job - parent.info.start_time) / 1000.0,
        "steps_per_s": [r.data.metrics["time/train_steps_per_s"] for r in jobs],
        "overhead_s": [r.data.metrics["time/overhead_s"] for r in jobs],
        "threads": sorted({r.data.params["threads_resolved"] for r in jobs}),
    }


def launchers(tmp: Path, jobs: int, timesteps: int, workers: int) -> dict[str, Any]:
    seeds = ",".join(str(s) for s in range(1, jobs + 1))
    basic = sweep(tmp, "basic", seeds, timesteps, None)
    par = sweep(
        tmp, "joblib", seeds, timesteps, None, "hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}"
    )
    startup = par["to_first_job_s"] - basic["to_first_job_s"]
    return {
        "basic": basic,
        "joblib": par,
        "speedup": basic["wall_s"] / par["wall_s"],
        "worker_startup_s": startup,
    }


def neighbours(tmp: Path, timesteps: int) -> dict[str, float]:
    """Training steps/s of a single job alone and beside a twin, bounded and unbounded threads."""

    def jobs_at_once(name: str, n: int, threads: str) -> list[float]:
        uri = f"sqlite:///{tmp}/{name}/mlflow.db"
        cmd = [sys.executable, "-m", "rlpipe.train", f"timesteps={timesteps}", "progress_bar=false",
               f"threads={threads}", f"tracking.uri={uri}", f"hydra.run.dir={tmp}/{name}/out"]  # fmt: skip
        cli("rlpipe.train", "timesteps=512", "progress_bar=false", f"tracking.uri={uri}",
            f"hydra.run.dir={tmp}/{name}/warm")  # fmt: skip  # the store exists before they race
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(n)
        ]
        if any(p.wait() for p in procs):
            raise SystemExit(f"{name}: a job failed")
        found = runs(uri)[0]
        return [
            r.data.metrics["time/train_steps_per_s"] for r in found if r.data.params["timesteps"] != "512"
        ]

    cores = len(os.sched_getaffinity(0))
    solo = jobs_at_once("solo", 1, str(cores))[0]
    bounded = jobs_at_once("paired-bounded", 2, str(max(1, cores // 2)))
    unbounded = jobs_at_once("paired-unbounded", 2, str(cores))
    return {
        "solo_steps_per_s": solo,
        "paired_bounded_steps_per_s": min(bounded),
        "paired_bounded_fraction": min(bounded) / solo,
        "paired_unbounded_steps_per_s": min(unbounded),
        "paired_unbounded_fraction": min(unbounded) / solo,
    }


def stores(tmp: Path, timesteps: int) -> dict[str, Any] | None:
    try:
        from rlpipe.server.postgres import free_port
        from rlpipe.server.tracking_server import start, stop
    except ImportError:
        return None
    try:
        import pgserver  # noqa: F401
    except ImportError:
        return None
    sqlite = sweep(tmp, "sqlite", "1,2,3", timesteps, None)
    root = tmp / "server-state"
    uri = start(root, port=free_port())
    try:
        server = sweep(tmp, "server", "1,2,3", timesteps, uri)
    finally:
        stop(root)
    return {"sqlite": sqlite, "server": server}


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def launcher_line(name: str, x: dict[str, Any]) -> str:
    per_job = mean(x["steps_per_s"])
    return f"   {name:16s} {x['wall_s']:7.1f} s   {per_job:8.0f} steps/s per job   threads {x['threads']}"


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    la = r["launchers"]
    print(f"\n1. launchers: {args.jobs} jobs x {args.timesteps} steps")
    print(launcher_line("basic", la["basic"]))
    print(launcher_line(f"joblib n_jobs={args.workers}", la["joblib"]))
    startup = la["worker_startup_s"]
    print(f"   speed-up {la['speedup']:.2f}x; workers' start-up {startup:.1f} s before the first job")
    n = r["neighbours"]
    print(f"\n2. neighbours: one job of {args.pair_timesteps} steps")
    print(f"   alone:                          {n['solo_steps_per_s']:8.0f} steps/s")
    for key, label in (("bounded", "threads=cores/2"), ("unbounded", "threads=cores  ")):
        speed, frac = n[f"paired_{key}_steps_per_s"], n[f"paired_{key}_fraction"]
        print(f"   beside a twin, {label}: {speed:8.0f} steps/s ({100 * frac:.0f} % of alone)")
    s = r.get("stores")
    if s is None:
        print("\n3. stores: skipped (install the `server` extra: make server)")
        return
    print(f"\n3. stores: 3-seed sweep of {args.store_timesteps} steps per job")
    for name in ("sqlite", "server"):
        x = s[name]
        print(
            f"   {name:7s} {x['wall_s']:7.1f} s wall   {mean(x['overhead_s']):5.1f} s per run outside learn()"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--timesteps", type=int, default=300_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--pair-timesteps", type=int, default=300_000)
    ap.add_argument("--store-timesteps", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlpipe-scale-", ignore_cleanup_errors=True) as tmp:
        r: dict[str, Any] = {"cores": len(os.sched_getaffinity(0))}
        r["launchers"] = launchers(Path(tmp), args.jobs, args.timesteps, args.workers)
        r["neighbours"] = neighbours(Path(tmp), args.pair_timesteps)
        r["stores"] = stores(Path(tmp), args.store_timesteps)
    report(r, args)
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(json.dumps({"args": vars(args), **r}, indent=2))


if __name__ == "__main__":
    main()
