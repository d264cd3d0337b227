"""`make bench-loop`: what a sweep costs beyond its training, side by side in one run on this machine.

1. refusal: the wall time of `python -m rlpipe.train` refusing a bad key, a wrong type and a bad
   value (median of three each), and whether torch, SB3 or MLflow had been imported by then;
2. the `make run` sweep (`experiment=seed_sweep`, 3 seeds x T steps, basic launcher, fresh store):
   wall time against the sum of its jobs' `learn()` (`time/learn_s`), the per-job time outside
   `learn()` (`time/overhead_s`) and its parts (`time/part/<part>_s`), and when the tear sheets,
   drawn after each job by a process of their own, were all in the store;
3. launchers: the same N jobs x T steps with the basic launcher, joblib (W workers) and, when the
   `ray` extra is installed, a local Ray: wall time, speed-up over basic, per-job overhead;
4. `--suite`: the default test suite's wall time (`python -m pytest -q`, several minutes).

Each figure is one run of real CLI commands, read back from the store they wrote; the machine's
load is printed with them. Results go to bench_results/loop.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.gates import write
from benchmarks.scale import ROOT, cli, runs
from rlpipe.tracking import tags as T

HEAVY = ("torch", "stable_baselines3", "mlflow")
BAD = {
    "unknown key": ["timestep=5"],
    "wrong type": ["timesteps=many"],
    "bad value": ["timesteps=-5"],
}
PROBE = "import runpy, sys, atexit; atexit.register(lambda: sys.stderr.write('HEAVY=' + ','.join(m for m in {heavy} if m in sys.modules) + '\\n')); sys.argv = ['rlpipe.train', *sys.argv[1:]]; runpy.run_module('rlpipe.train', run_name='__main__')"  # noqa: E501


def refusal(repeat: int = 3) -> dict[str, Any]:
    """Seconds until each bad config is refused (exit 2), and the heavy modules imported by then."""
    out = {}
    for what, args in BAD.items():
        walls, heavy, line = [], "", ""
        for _ in range(repeat):
            t0 = time.perf_counter()
            code = PROBE.format(heavy=HEAVY)
            proc = subprocess.run(
                [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True
            )
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 2:
                raise SystemExit(f"{args}: exit {proc.returncode}, not 2:\n{proc.stderr[-2000:]}")
            heavy = next((x[6:] for x in proc.stderr.splitlines() if x.startswith("HEAVY=")), "?")
            line = next((x for x in proc.stderr.splitlines() if x.startswith("error")), proc.stderr[:200])
        out[what] = {"median_s": statistics.median(walls), "imported": heavy or "none", "message": line}
    return out


def _sweep(tmp: Path, name: str, seeds: str, timesteps: int, *extra: str) -> tuple[float, str]:
    uri = f"sqlite:///{tmp}/{name}/mlflow.db"
    wall = cli("rlpipe.train", "-m", "experiment=seed_sweep", f"seed={seeds}", f"timesteps={timesteps}",
               "progress_bar=false", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/{name}/multirun",
               *extra)  # fmt: skip
    return wall, uri


def figures(wall: float, uri: str, drawn_by: float | None = None) -> dict[str, Any]:
    """A sweep's wall time against its jobs' training, and the jobs' time outside `learn()`."""
    jobs, _ = runs(uri)
    jobs = sorted(jobs, key=lambda r: r.info.start_time)
    m = [r.data.metrics for r in jobs]
    learn = sum(x["time/learn_s"] for x in m)
    parts = sorted({k for x in m for k in x if k.startswith("time/part/")})
    return {
        "wall_s": wall,
        "jobs": len(jobs),
        "learn_s": learn,
        # a job's learn() is slower when a drawing process holds up one of its threads: read it with the ratio
        "learn_per_job_s": learn / len(jobs),
        "threads": sorted({r.data.params.get("threads_resolved", "?") for r in jobs}),
        "wall_over_learn": wall / learn,
        "overhead_s": [x["time/overhead_s"] for x in m],
        # a process's first job pays its one-time warm-ups (torch's optimizer machinery, the compiled
        # simulator loaded, the store's first connection); the later jobs show the cost per job
        "later_jobs_overhead_mean_s": statistics.mean(x["time/overhead_s"] for x in m[1:]) if m[1:] else None,
        "parts_mean_s": {p[10:-2]: statistics.mean(x.get(p, 0.0) for x in m) for p in parts},
        "outside_learn_per_job_s": (wall - learn) / len(jobs),
        **({"tear_sheets_in_store_after_s": drawn_by} if drawn_by is not None else {}),
    }


def drawn(uri: str, t0: float, wall: float) -> tuple[float, list[str]]:
    """Wait until every job's tear sheets and the sweep's comparison plot are drawn (or failed): the
    seconds since `t0`, and the drawing states. The next sweep then starts on a quiet machine, as a
    user's would."""
    while True:
        jobs, parent = runs(uri)
        states = [r.data.tags.get(T.TEAR_SHEETS, "") for r in jobs]
        states += [parent.data.tags.get(T.SWEEP_PLOT, "")] if parent else []  # the comparison plot too
        done = all(not s or s.startswith(("drawn", "failed")) for s in states)
        if done or time.perf_counter() - t0 > wall + 300:
            return time.perf_counter() - t0, sorted(set(states))
        time.sleep(0.5)


def make_run(tmp: Path, timesteps: int) -> dict[str, Any]:
    """The `make run` sweep, and how long after the command ended its tear sheets were all drawn."""
    t0 = time.perf_counter()
    wall, uri = _sweep(tmp, "make-run", "1,6,11", timesteps)
    after, states = drawn(uri, t0, wall)
    jobs, _ = runs(uri)
    totals = {r.data.params["seed"]: r.data.metrics.get("test/total") for r in jobs}  # results unchanged?
    return {**figures(wall, uri, after), "tear_sheets": states, "test_total_by_seed": totals}


def launchers(tmp: Path, jobs: int, timesteps: int, workers: int) -> dict[str, Any]:
    seeds = ",".join(str(s) for s in range(1, jobs + 1))
    given = {"basic": (), "joblib": ("hydra/launcher=joblib", f"hydra.launcher.n_jobs={workers}")}
    if importlib.util.find_spec("ray") is not None:
        given["ray"] = ("hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={workers}")
    out = {}
    for name, overrides in given.items():
        t0 = time.perf_counter()
        wall, uri = _sweep(tmp, name, seeds, timesteps, *overrides)
        out[name] = figures(wall, uri, drawn(uri, t0, wall)[0])  # the next sweep starts on a quiet machine
    for name in list(out):
        out[name]["speedup_over_basic"] = out["basic"]["wall_s"] / out[name]["wall_s"]
    return out


def suite() -> dict[str, Any]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadfile"]  # as `make test` runs it
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    return {"wall_s": time.perf_counter() - t0, "exit": proc.returncode, "summary": tail}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=300_000, help="steps per job (make run: 300k)")
    p.add_argument("--jobs", type=int, default=8, help="jobs of the launcher comparison")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--suite", action="store_true", help="also time the default test suite")
    args = p.parse_args()
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    results: dict[str, Any] = {"refusal": refusal()}
    for what, r in results["refusal"].items():
        print(f"refused ({what}): {r['median_s']:.2f} s, heavy modules imported: {r['imported']}", flush=True)
    # ignore_cleanup_errors: a tear-sheet process of the last sweep may still be writing into it
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-loop-", ignore_cleanup_errors=True) as tmp:
        results["make_run"] = make_run(Path(tmp), args.timesteps)
        print(_line("make run (3 jobs, basic)", results["make_run"]), flush=True)
        print(f"make run, test total by seed: {results['make_run']['test_total_by_seed']}", flush=True)
        results["launchers"] = launchers(Path(tmp), args.jobs, args.timesteps, args.workers)
        for name, r in results["launchers"].items():
            print(
                _line(f"{args.jobs} jobs, {name}", r) + f", x{r['speedup_over_basic']:.2f} basic", flush=True
            )
    if args.suite:
        results["suite"] = suite()
        print(
            f"default suite: {results['suite']['wall_s']:.0f} s ({results['suite']['summary']})", flush=True
        )
    results["load_after"] = os.getloadavg()
    write("loop.json", results)


def _line(name: str, r: dict[str, Any]) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in r["parts_mean_s"].items())
    drawn = f"; tear sheets all in the store {r['tear_sheets_in_store_after_s']:.0f} s after start" if (
        "tear_sheets_in_store_after_s" in r) else ""  # fmt: skip
    return (f"{name}: wall {r['wall_s']:.1f} s for {r['learn_s']:.1f} s of learn() "
            f"= x{r['wall_over_learn']:.2f} (learn() {r['learn_per_job_s']:.2f} s per job on "
            f"{'/'.join(r['threads'])} thread(s)); "
            f"outside learn() per job {r['outside_learn_per_job_s']:.2f} s "
            f"(in-job overhead: first job {r['overhead_s'][0]:.2f} s, later jobs "
            f"{r['later_jobs_overhead_mean_s'] or 0:.2f} s; means {parts}){drawn}")  # fmt: skip


if __name__ == "__main__":
    main()
