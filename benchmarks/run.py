"""`make bench`: side-by-side throughput tables, measured in one process on one machine.

1. raw env steps/s: batched simulator and VecTradingEnv (64 envs) vs our single gymnasium env
   vs gym-anytrading's forex-v0 (when the optional `peers` extra is installed);
2. end-to-end PPO training steps/s: project default config vs SB3 default hyperparameters on
   a single env;
3. walk-forward evaluation: 5 folds x 253 bars, agent + 3 baselines, one batch;
4. fixed per-run overhead: a smoke job's wall time outside `learn()`.

Results also go to bench_results/latest.json. Timings vary run to run by a few percent; each
figure is the best of `--repeat` attempts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.cli.compose import train_job
from rlpipe.cli.schemas import register_configs
from rlpipe.data.slices import resolve, walk_forward
from rlpipe.envs.sim import BatchSim
from rlpipe.envs.trading_env import TradingEnv
from rlpipe.envs.vec_env import VecTradingEnv
from rlpipe.evaluation.backtest import backtest
from rlpipe.jobs.job_config import TrainJob
from rlpipe.jobs.prepare import Prepared, prepare
from rlpipe.jobs.train_job import run_train

ROOT = Path(__file__).resolve().parents[1]


def best_of(repeat: int, fn: Callable[[], float]) -> float:
    return max(fn() for _ in range(repeat))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"
    )


def compose_job(*overrides: str) -> TrainJob:
    """The typed training job of conf/train.yaml with `overrides`."""
    register_configs()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return train_job(compose("train", overrides=list(overrides)))


def setup(env: str) -> tuple[TrainJob, Prepared]:
    """The project's default job on `env` and its prepared data (the store is never opened)."""
    job = compose_job(f"env={env}", "tracking.uri=sqlite:///unused.db")
    return job, prepare(job.data, job.slices)


def gym_steps_per_s(env: Any, actions: np.ndarray) -> float:
    """Steps/s of a single gymnasium env over `actions`, resetting at episode ends."""
    env.reset(seed=0)
    t = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return len(actions) / (time.perf_counter() - t)


def env_throughput(steps: int, repeat: int) -> list[tuple[str, float]]:
    job, data = setup("management")
    market, sim_cfg, reward, train = data.market, job.env, job.reward, data.train_ranges
    rows: list[tuple[str, float]] = []
    rng = np.random.default_rng(0)

    def batched_sim(n: int = 64) -> float:
        sim = BatchSim(market, sim_cfg, reward, n)
        acts = rng.integers(0, 3, (steps, n))
        sim.reset_rows(np.arange(n), np.full(n, 100), np.full(n, market.n_bars - 1))
        t = time.perf_counter()
        for a in acts:
            sim.step(a)
            sim.observe()
        return n * steps / (time.perf_counter() - t)

    def vec_env(n: int = 64) -> float:
        venv = VecTradingEnv(market, sim_cfg, reward, train, n_envs=n, full_infos=False)
        venv.seed(0)
        venv.reset()
        acts = rng.integers(0, 3, (steps, n))
        t = time.perf_counter()
        for a in acts:
            venv.step(a)
        return n * steps / (time.perf_counter() - t)

    def single_env() -> float:
        return gym_steps_per_s(TradingEnv(market, sim_cfg, reward, train), rng.integers(0, 3, steps))

    rows.append(("rlpipe BatchSim step+observe, management, 64 envs", best_of(repeat, batched_sim)))
    rows.append(
        (
            "rlpipe VecTradingEnv (SB3 VecEnv, reward, auto-reset), management, 64 envs",
            best_of(repeat, vec_env),
        )
    )
    rows.append(("rlpipe TradingEnv (gymnasium, 1 env), management", best_of(repeat, single_env)))
    try:
        import gym_anytrading  # noqa: F401
        import gymnasium as gym

        def anytrading() -> float:
            return gym_steps_per_s(gym.make("forex-v0"), rng.integers(0, 2, steps))

        rows.append(("gym-anytrading forex-v0 (gymnasium, 1 env)", best_of(repeat, anytrading)))
    except ImportError:
        rows.append(("gym-anytrading forex-v0: not installed (pip install -e '.[bench]')", float("nan")))
    return rows


def training_throughput(timesteps: int, device: str) -> list[tuple[str, float]]:
    job, data = setup("management")
    market, sim_cfg, reward, train = data.market, job.env, job.reward, data.train_ranges
    rows = []
    venv = VecTradingEnv(market, sim_cfg, reward, train, full_infos=False)
    venv.seed(1)
    agent = job.agent.build(venv, 1, device)
    t = time.perf_counter()
    agent.learn(timesteps)
    rows.append(
        (
            f"PPO, project defaults ({sim_cfg.n_envs} batched envs), {device}",
            timesteps / (time.perf_counter() - t),
        )
    )
    single = DummyVecEnv([lambda: TradingEnv(market, sim_cfg, reward, train)])
    agent = PPO("MlpPolicy", single, seed=1, device=device, verbose=0)
    t = time.perf_counter()
    agent.learn(timesteps)
    rows.append(
        (
            f"PPO, SB3 defaults (1 env, n_steps 2048, 10 epochs), {device}",
            timesteps / (time.perf_counter() - t),
        )
    )
    try:
        import gym_anytrading  # noqa: F401
        import gymnasium as gym

        peer = PPO("MlpPolicy", DummyVecEnv([lambda: gym.make("forex-v0")]), seed=1, device=device, verbose=0)
        t = time.perf_counter()
        peer.learn(timesteps)
        rows.append(
            (f"PPO, SB3 defaults on gym-anytrading forex-v0, {device}", timesteps / (time.perf_counter() - t))
        )
    except ImportError:
        rows.append(("PPO on gym-anytrading: not installed (pip install -e '.[bench]')", float("nan")))
    return rows


def evaluation_time(repeat: int) -> list[tuple[str, float]]:
    job, data = setup("management")
    market, sim_cfg, df = data.market, job.env, data.df
    slices = walk_forward(df.index, df["close"].to_numpy(), folds=5, test_bars=253, embargo_bars=168)
    windows = [w for w in resolve(slices, df.index) if w.slice.role == "test"]
    venv = VecTradingEnv(market, sim_cfg, job.reward, data.train_ranges)
    agent = job.agent.build(venv, 1, "cpu")

    def once() -> float:
        t = time.perf_counter()
        backtest(market, sim_cfg, windows, lambda o: agent.predict(o, deterministic=True)[0], seed=1)
        return -(time.perf_counter() - t)  # best_of takes the max: negate to keep the fastest

    return [("walk-forward 5 folds x 253 bars, agent + 3 baselines, one batch (s)", -best_of(repeat, once))]


def run_overhead() -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        job = compose_job("experiment=smoke", f"tracking.uri=sqlite:///{tmp}/mlflow.db", "device=cpu")
        run_train(job)  # first run pays the store's schema creation; measure the second
        t = time.perf_counter()
        result = run_train(job)
        wall = time.perf_counter() - t
    # the job logs the same two figures as time/learn_s and time/overhead_s in its MLflow run
    return [
        ("smoke job wall time, in process (s)", wall),
        ("  of which learn() (s)", result.learn_s),
        ("  fixed per-run overhead outside learn() (s)", result.overhead_s),
    ]


def table(title: str, rows: list[tuple[str, float]], unit: str) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [f"\n{title}", "-" * (width + 18)]
    for name, v in rows:
        val = "n/a" if not np.isfinite(v) else (f"{v:,.0f}" if v >= 100 else f"{v:,.3f}")
        lines.append(f"{name:<{width}}  {val:>12} {unit}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env-steps", type=int, default=3000)
    ap.add_argument("--train-steps", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    results = {
        "env steps/s": env_throughput(args.env_steps, args.repeat),
        "training steps/s": training_throughput(args.train_steps, args.device),
        "evaluation": evaluation_time(args.repeat),
        "per-run overhead": run_overhead(),
    }
    print(table("Raw env throughput (higher is better)", results["env steps/s"], "steps/s"))
    print(table("End-to-end PPO training (higher is better)", results["training steps/s"], "steps/s"))
    print(table("Walk-forward evaluation (lower is better)", results["evaluation"], "s"))
    print(table("Per-run overhead (lower is better)", results["per-run overhead"], "s"))
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"machine": machine(), **results}, indent=2))


if __name__ == "__main__":
    main()
