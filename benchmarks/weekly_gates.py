"""`make bench-weekly-gates`: how often the weekly sweep step promotes an agent that has no skill,
and how often it promotes one that has.

`make bench-gates` measures the seed sweep; this measures `experiment=weekly` the same way (its
markets, its exact intervals, its goals: false promotion <= 5%, power >= 80%). K chains on
martingale markets and K on the planted-signal market, each chain on a new market seed
(`data.seed`) in its own fresh store, each week `python -m rlpipe.train -m experiment=weekly`
through the real CLI, scaled down (`--budget`, `--explorers`, `--refiners`, `--seeds`) so that a
week takes a minute or two on two cores while its members still learn the planted signal.

Week 1 of a fresh store is a pure search: no registry yet, so the refiner and champion slots
explore too, and the sweep step tests the search's pick by validation alone. With `--weeks 2`
a second week runs in the same store on the same market: its refiners continue week 1's best
versions by validation and its champion slot continues week 1's champion (if one was named), so
the step also tests real continuations. The test slices are the same bars every week, so a chain
"promotes" when any of its weeks names a champion (the parent run's `rlpipe.champion_version`).

Per week: the champion's role (the explorer pick, a refiner, the champion continuation), every
configuration's member, verdict, deflated Sharpe ratio and seeds' test totals, the run verdicts,
the trials the DSR counted. Results go to bench_results/weekly_gates.json.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.gates import MARKETS, rates, run_sweep, store, write
from rlpipe.jobs.weekly_plan import ROLES, WeeklySpec, role_steps
from rlpipe.tracking import queries
from rlpipe.tracking.rows import JobRow
from rlpipe.tracking.tracker import Tracker


def scale(args: argparse.Namespace) -> list[str]:
    """The scaled-down week's overrides (every chain, every week)."""
    seeds = ",".join(map(str, args.seeds))
    launcher = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"] if args.jobs > 1 else []
    return [
        f"weekly.budget={args.budget}", f"weekly.explorers={args.explorers}",
        f"weekly.refiners={args.refiners}", f"weekly.seeds=[{seeds}]", "plots=false", "threads=1",
        *launcher,
    ]  # fmt: skip


def role_of(row: JobRow) -> str:
    """What a member is in the judgement: a continuation (refiner, champion continuation) tested on
    its own, or a configuration of the search (an explorer, or a slot that explored)."""
    if not row.parent_version:
        return "search"
    return "refiner" if row.role.startswith("refiner") else "champion continuation"


def one_week(where: Path, market: str, data_seed: int, week: int, overrides: list[str]) -> dict[str, Any]:
    """Run week `week` of the chain in the store under `where`; what its sweep step decided."""
    wall = run_sweep(where, where / f"week-{week}", market, data_seed, "weekly", overrides)
    tracker = Tracker(store(where), "rlpipe")
    sweep = queries.latest_sweep_id(tracker)
    report = queries.sweep_report(tracker, sweep) if sweep else None
    if sweep is None or report is None:
        raise SystemExit(f"{market} seed {data_seed} week {week}: no sweep report in {store(where)}")
    runs = queries.job_runs(tracker, sweep)
    metric = runs[0].data.params["gates.select_metric"]
    rows = [queries.job_row(r) for r in runs]
    champ = report.get("champion")
    winner = next((r for r in rows if champ and r.run_id == champ["run_id"]), None)
    return {
        "week": week,
        "promoted": winner is not None,
        "champion_version": champ["version"] if champ else None,
        "champion_role": _pick(role_of(winner)) if winner else None,
        "champion_member": winner.role if winner else None,
        "n_trials": report["n_trials"],
        "run_verdicts": dict(Counter(r.verdict for r in rows)),
        "configurations": [_config(c, rows, metric) for c in report["configurations"]],
        "wall_s": round(wall, 1),
    }


def _config(c: dict[str, Any], rows: list[JobRow], metric: str) -> dict[str, Any]:
    """A configuration of the sweep report with its member and seeds: (seed, run verdict,
    validation score, test total), and the gates it failed with their values."""
    members = sorted((r for r in rows if r.config_hash == c["config_hash"]), key=lambda r: r.seed or 0)
    return {
        "member": members[0].role if members else "?",
        "role": role_of(members[0]) if members else "?",
        "verdict": c["verdict"],
        "dsr": _round(c["deflated_sharpe"]),
        "mean_validation": _round(c["mean_validation_score"]),
        "seeds": [_seed(r, metric) for r in members],
        "failed": {k: _round(g["value"]) for k, g in c["gates"].items() if g["passed"] is False},
    }


def _seed(r: JobRow, metric: str) -> list[Any]:
    """A member's seed: [seed, run verdict, validation score, test total]."""
    return [r.seed, r.verdict, _round(r.validation.get(metric)), _round(r.test.get("total"))]


def _pick(role: str) -> str:
    """A searched champion is the search's pick (only the pick is tested)."""
    return "explorer pick" if role == "search" else role


def _round(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 4)


def one_chain(tmp: Path, market: str, data_seed: int, weeks: int, overrides: list[str]) -> dict[str, Any]:
    """`weeks` weekly sweeps in one fresh store on `market` with market seed `data_seed`."""
    where = tmp / f"{market}-{data_seed}"
    done = [one_week(where, market, data_seed, w + 1, overrides) for w in range(weeks)]
    return {
        "market": market,
        "data_seed": data_seed,
        "promoted": any(w["promoted"] for w in done),
        "weeks": done,
        "wall_s": round(sum(w["wall_s"] for w in done), 1),
    }


def line(chain: dict[str, Any]) -> str:
    """One chain in a line: per week the champion, or why the tested configurations were refused."""
    parts = []
    for w in chain["weeks"]:
        runs = "/".join(f"{n} {v}" for v, n in sorted(w["run_verdicts"].items()))
        if w["promoted"]:
            what = f"champion v{w['champion_version']} = {w['champion_role']} ({w['champion_member']})"
        else:
            refused = [c for c in w["configurations"] if c["verdict"] not in ("promote", "unpicked")]
            what = "none: " + "; ".join(
                f"{c['member']} ({c['role']}) {c['verdict']} {c['failed']}, seeds {c['seeds']}"
                for c in refused
            )
        parts.append(f"week {w['week']} [{runs}; {w['n_trials']} trial(s); {w['wall_s']} s]: {what}")
    return f"{chain['market']:10s} {chain['data_seed']}: " + " | ".join(parts)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweeps", type=int, default=6, help="chains per market (K)")
    p.add_argument("--weeks", type=int, default=1, help="weekly sweeps per chain, in one store")
    p.add_argument("--first-seed", type=int, default=1000, help="market seeds first-seed .. first-seed+K-1")
    p.add_argument("--markets", default=",".join(MARKETS))
    p.add_argument("--budget", type=int, default=2_400_000, help="weekly.budget: steps of one week")
    p.add_argument("--explorers", type=int, default=4)
    p.add_argument("--refiners", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 6], help="weekly.seeds")
    p.add_argument("--jobs", type=int, default=2, help="jobs at once (joblib launcher when > 1)")
    p.add_argument("--keep", type=Path, help="put the chains' stores in this folder and keep them")
    p.add_argument("extra", nargs="*", help="overrides for every week, e.g. data.signal_strength=0.1")
    args = p.parse_args()
    spec = WeeklySpec(budget=args.budget, explorers=args.explorers, refiners=args.refiners, seeds=args.seeds)
    steps = dict(zip(ROLES, role_steps(spec), strict=True))
    print(f"weekly.budget={args.budget}: {spec.jobs} jobs a week; steps per member and seed {steps}")
    overrides = [*scale(args), *args.extra]
    results = []
    with tempfile.TemporaryDirectory(prefix="rlpipe-bench-weekly-gates-", ignore_cleanup_errors=True) as tmp:
        folder = args.keep or Path(tmp)
        for i in range(args.sweeps):
            for market in args.markets.split(","):
                chain = one_chain(folder, market, args.first_seed + i, args.weeks, overrides)
                results.append(chain)
                print(line(chain), flush=True)
    by_week = {}
    for w in range(1, args.weeks):  # the rates had the chains stopped after week w (week 1: a pure search)
        print(f"promoted by week {w}:")
        by_week[w] = rates([{**c, "promoted": any(x["promoted"] for x in c["weeks"][:w])} for c in results])
    print(f"promoted in any of {args.weeks} week(s):")
    payload = {"args": vars(args), "steps_per_member_seed": steps, **rates(results), "by_week": by_week}
    write("weekly_gates.json", {**payload, "chains": results})


if __name__ == "__main__":
    main()
