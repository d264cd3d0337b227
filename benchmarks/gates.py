"""`make bench-gates`: how often the gates promote an agent that has no skill, and how often they
promote one that has.

K sweeps on martingale markets (zero drift, no mean reversion, no planted signal: nothing is
learnable, so any promotion is false) and K sweeps on the default planted-signal market, each
sweep on a new market seed (`data.seed`), each the default `experiment=seed_sweep` (3 seeds) run
through the real CLI into its own store. A sweep "promotes" when its sweep step names a champion
(the parent run's `rlpipe.champion_version`). Prints the false-promotion rate and the power with
exact (Clopper-Pearson) 95% confidence intervals; results also go to bench_results/gates.json.

The goal at the defaults: false promotion <= 5% (the interval's upper end is what shows it) and
power >= 80%. With K sweeps and no false promotion the upper end is 1 - 0.025**(1/K): K = 72 is
needed to show <= 5%.
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

from mlflow.tracking import MlflowClient
from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]
MARKETS = {
    "martingale": ["data.trend=0", "data.mean_reversion=0", "data.signal_strength=0"],
    "planted": [],
}


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval of k successes in n trials."""
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def store(where: Path) -> str:
    """The tracking URI of the sqlite store under `where`."""
    return f"sqlite:///{where}/mlflow.db"


def run_sweep(
    where: Path, sweep_dir: Path, market: str, data_seed: int, experiment: str, extra: list[str]
) -> float:
    """Run one multirun `experiment` through the real CLI on `market` with market seed `data_seed`
    into the store under `where`, `extra` overrides last; its wall time. A sweep that promotes
    nothing may end with status 1 or 2; anything else is a crash."""
    cmd = [
        sys.executable, "-m", "rlpipe.train", "-m", f"experiment={experiment}", f"data.seed={data_seed}",
        "progress_bar=false", f"tracking.uri={store(where)}", f"hydra.sweep.dir={sweep_dir}",
        *MARKETS[market], *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"sweep {market} seed {data_seed} crashed:\n{proc.stderr[-3000:]}")
    return wall


def one_sweep(tmp: Path, market: str, data_seed: int, extra: list[str]) -> dict[str, Any]:
    """Run one seed sweep on `market` with market seed `data_seed`; what its sweep step decided."""
    where = tmp / f"{market}-{data_seed}"
    wall = run_sweep(where, where / "multirun", market, data_seed, "seed_sweep", extra)
    client = MlflowClient(store(where))
    exp = client.get_experiment_by_name("rlpipe").experiment_id
    parent = client.search_runs([exp], filter_string="tags.`rlpipe.kind` = 'sweep'")[0]
    jobs = client.search_runs([exp], filter_string="tags.`rlpipe.kind` = 'job'")
    champion = parent.data.tags.get("rlpipe.champion_version", "none")
    return {
        "market": market,
        "data_seed": data_seed,
        "promoted": champion != "none",
        "run_verdicts": sorted(r.data.tags.get("rlpipe.verdict", "-") for r in jobs),
        "sweep_verdict": sorted({r.data.tags.get("rlpipe.sweep_verdict", "-") for r in jobs}),
        "test_totals": [round(r.data.metrics.get("test/total", float("nan")), 4) for r in jobs],
        "wall_s": round(wall, 1),
    }


def summary(results: list[dict[str, Any]], market: str) -> dict[str, Any]:
    of = [r for r in results if r["market"] == market]
    k = sum(r["promoted"] for r in of)
    lo, hi = clopper_pearson(k, len(of)) if of else (float("nan"), float("nan"))
    return {"promoted": k, "sweeps": len(of), "rate": k / len(of) if of else float("nan"), "ci95": [lo, hi]}


def rates(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The false-promotion rate (martingale) and the power (planted signal) of `results` (each with
    `market` and `promoted`), printed against the goals with their exact 95% intervals."""
    out = {"false_promotion": summary(results, "martingale"), "power": summary(results, "planted")}
    goals = (("false_promotion", "false promotion (martingale)", "<= 5%"),
             ("power", "power (planted signal)", ">= 80%"))  # fmt: skip
    for key, what, goal in goals:
        s = out[key]
        lo, hi = s["ci95"]
        print(f"{what:30s} {s['promoted']}/{s['sweeps']} = {s['rate']:.1%}, "
              f"95% CI [{lo:.1%}, {hi:.1%}]  (goal {goal})")  # fmt: skip
    return out


def write(name: str, payload: dict[str, Any]) -> None:
    """Write `payload` to bench_results/`name`."""
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / name).write_text(json.dumps(payload, indent=2, default=str))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweeps", type=int, default=20, help="sweeps per market (K)")
    p.add_argument("--first-seed", type=int, default=1000, help="market seeds first-seed .. first-seed+K-1")
    p.add_argument("--markets", default="martingale,planted")
    p.add_argument("extra", nargs="*", help="overrides for every sweep, e.g. threads=1 timesteps=200000")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-gates-", ignore_cleanup_errors=True) as tmp:
        for i in range(args.sweeps):
            for market in args.markets.split(","):
                r = one_sweep(Path(tmp), market, args.first_seed + i, args.extra)
                results.append(r)
                print(json.dumps(r), flush=True)
    payload = {"args": vars(args), **rates(results), "sweeps": results}
    write("gates.json", payload)


if __name__ == "__main__":
    main()
