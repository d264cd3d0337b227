"""`make bench-length`: what choosing the training length and resuming cost, on the default market.

1. lengths: the `make run` sweep (3 seeds x `--timesteps`) with `lengths` at 1/4, 1/2 and
   3/4 of the length (4 candidates with the last): the time spent scoring those checkpoints on
   validation as a fraction of the training time, and the length each seed kept;
2. resume: one job uninterrupted, then the same job killed (SIGKILL) once its first resumable
   state is written and resumed with `resume=true`: wall times, and the steps trained again.

Each figure is one run of real CLI commands (subprocesses) read back from the store they wrote;
results also go to bench_results/length.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]


def train(*args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rlpipe.train", *args], cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"rlpipe.train {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def job_runs(uri: str) -> list[Any]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe").experiment_id
    return client.search_runs([exp], filter_string="tags.`rlpipe.kind` = 'job'")


def checkpoints(tmp: Path, timesteps: int) -> dict[str, Any]:
    uri = f"sqlite:///{tmp}/ck/mlflow.db"
    lengths = [timesteps // 4, timesteps // 2, 3 * timesteps // 4]
    listed = ",".join(map(str, lengths))
    wall = train(
        "-m", "experiment=seed_sweep", f"timesteps={timesteps}", f"lengths=[{listed}]",
        "progress_bar=false", f"tracking.uri={uri}", f"hydra.sweep.dir={tmp}/ck/multirun",
        f"checkpoint.dir={tmp}/ck/states",
    )  # fmt: skip
    seeds = []
    for r in sorted(job_runs(uri), key=lambda r: int(r.data.tags["rlpipe.seed"])):
        m = r.data.metrics
        scoring, learn = m["time/checkpoint_s"], m["time/learn_s"]
        seeds.append(
            {
                "seed": int(r.data.tags["rlpipe.seed"]),
                "kept_timesteps": int(r.data.tags["rlpipe.selected_timesteps"]),
                "why": r.data.tags["rlpipe.length_selection"],
                "checkpoint_s": scoring,
                "training_s": learn - scoring,
                "fraction": scoring / (learn - scoring),
            }
        )
    return {"wall_s": wall, "lengths": [*lengths, timesteps], "seeds": seeds}


def resume(tmp: Path, timesteps: int, every: int) -> dict[str, Any]:
    base = ["experiment=seed_sweep", "seed=1", f"timesteps={timesteps}", f"checkpoint.every={every}",
            "progress_bar=false", "force=true"]  # fmt: skip
    uri = f"sqlite:///{tmp}/rs/mlflow.db"
    where = [f"tracking.uri={uri}", f"checkpoint.dir={tmp}/rs/states", "hydra.run.dir=" + str(tmp / "rs/out")]
    whole = train(*base, *where)
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "rlpipe.train", *base, *where]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list((tmp / "rs/states").glob("*/checkpoint.json")) and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.perf_counter() - t0
    saved = json.loads(next((tmp / "rs/states").glob("*/checkpoint.json")).read_text())
    subprocess.run([sys.executable, "-m", "rlpipe.runs", "reap", f"tracking.uri={uri}"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    resumed = train(*base, *where, "resume=true")
    return {
        "uninterrupted_s": whole,
        "killed_after_s": killed_at,
        "saved_steps": saved["num_timesteps"],
        "resumed_s": resumed,
        "killed_plus_resumed_s": killed_at + resumed,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timesteps", type=int, default=300_000)
    p.add_argument("--every", type=int, default=100_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-length-", ignore_cleanup_errors=True) as t:
        tmp = Path(t)
        ck = checkpoints(tmp, args.timesteps)
        rs = resume(tmp, args.timesteps, args.every)
    print(f"checkpoints {ck['lengths']} (3-seed sweep, {ck['wall_s']:.1f} s):")
    for s in ck["seeds"]:
        print(f"  seed {s['seed']:>2}: kept {s['kept_timesteps']:>7} steps; "
              f"scoring {s['checkpoint_s']:.2f} s "
              f"= {s['fraction']:.1%} of {s['training_s']:.1f} s training  ({s['why']})")  # fmt: skip
    print(f"resume (seed 1, {args.timesteps} steps, state every {args.every}): uninterrupted "
          f"{rs['uninterrupted_s']:.1f} s; killed after {rs['killed_after_s']:.1f} s "
          f"at {rs['saved_steps']} steps "
          f"+ resumed {rs['resumed_s']:.1f} s = {rs['killed_plus_resumed_s']:.1f} s")  # fmt: skip
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "length.json").write_text(
        json.dumps({"args": vars(args), "checkpoints": ck, "resume": rs}, indent=2)
    )


if __name__ == "__main__":
    main()
