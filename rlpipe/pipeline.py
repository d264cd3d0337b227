"""One job end to end: config -> data -> features -> slices -> env -> learn -> backtest -> gates -> MLflow.

`run(cfg)` is callable without Hydra's command line (a notebook can compose a config and call
it). It is the composition root: it instantiates the config groups, calls the pure layers, and
hands every result to `rlpipe.tracking` at the edge.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import math
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.callbacks import ProgressCallback, history_logger
from rlpipe.agents.setup import deterministic_policy, environment_info, resolve_device, seed_everything
from rlpipe.assess import assess, log_assessment
from rlpipe.data.features import fit_stats, normalise, raw_features
from rlpipe.data.slices import resolve, role_mask
from rlpipe.data.sources import data_digest
from rlpipe.envs import kernels
from rlpipe.envs.dummy import DummyEnv
from rlpipe.envs.market import make_market
from rlpipe.envs.vec_env import VecTradingEnv
from rlpipe.errors import ConfigError
from rlpipe.gates.rules import RETEST
from rlpipe.tracking import policy as tpolicy
from rlpipe.tracking import registry, runs
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger(__name__)


def config_hash(cfg: DictConfig) -> str:
    """Hash of the resolved config minus the seed and where it is recorded: groups seeds of one config."""
    d = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(d, dict)
    for key in ("seed", "tracking", "progress_bar", "hydra"):
        d.pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def git_sha(root: Path) -> str:
    """HEAD of the project checkout, with '-dirty' when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def check_required(cfg: DictConfig) -> None:
    """Refuse a config with values still marked ??? (for example data.path with data=csv)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"required value(s) not set: {', '.join(missing)}; pass them as key=value overrides"
        )


def check_agent_keys(agent_cfg: DictConfig) -> None:
    """Refuse agent keys the SB3 constructor does not take (a typo would otherwise crash late)."""
    target = agent_cfg.get("_target_")
    if not target:
        raise ConfigError("agent._target_ is missing (e.g. stable_baselines3.PPO)")
    module, _, name = str(target).rpartition(".")
    cls = getattr(__import__(module, fromlist=[name]), name)
    accepted = set(inspect.signature(cls.__init__).parameters)
    unknown = [str(k) for k in agent_cfg if not str(k).startswith("_") and k not in accepted]
    if unknown:
        raise ConfigError(f"agent.{unknown[0]} is not a parameter of {target}; unknown key(s) {unknown}")


def run(cfg: DictConfig, sweep_id: str | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run one job and record it in MLflow; returns its summary (verdict, test metrics, run id)."""
    t_start = time.perf_counter()
    check_required(cfg)
    check_agent_keys(cfg.agent)
    device = resolve_device(cfg.device)
    seed = int(cfg.seed)
    data_spec = instantiate(cfg.data, _convert_="all")
    sim_cfg = instantiate(cfg.env, _convert_="all")
    reward_cfg = instantiate(cfg.reward, _convert_="all")
    slice_spec = instantiate(cfg.slices, _convert_="all")
    gates_cfg = instantiate(cfg.gates, _convert_="all")
    track = instantiate(cfg.tracking, _convert_="all")

    root = Path(str(OmegaConf.select(cfg, "hydra.runtime.cwd", default=None) or Path.cwd()))
    chash = config_hash(cfg)
    exp_id = ensure_experiment(track.uri, track.experiment)
    tags = {
        "rlpipe.sweep_id": sweep_id or "single",
        "rlpipe.config_hash": chash,
        "rlpipe.git_sha": git_sha(root),
        "rlpipe.agent": str(cfg.agent._target_).rpartition(".")[2].lower(),
        "rlpipe.env": sim_cfg.kind,
        "rlpipe.reward": reward_cfg.kind,
        "rlpipe.seed": str(seed),
        "rlpipe.kind": "job",
    }
    parent = runs.find_parent_run(exp_id, sweep_id) if sweep_id else None
    if parent:
        tags["mlflow.parentRunId"] = parent  # nests the job under its sweep in the MLflow UI
    run_name = f"{tags['rlpipe.agent']}-{sim_cfg.kind}-{reward_cfg.kind}-t{cfg.timesteps}-s{seed}"
    with runs.job_run(exp_id, run_name, tags) as run_id:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(resolved, dict)
        runs.log_params({**{str(k): v for k, v in resolved.items()}, "device_resolved": device})
        runs.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        runs.log_text(OmegaConf.to_yaml(list(overrides)), "config/overrides.yaml")
        runs.log_dict(environment_info(device), "config/environment.json")

        # Data and slices first: bad input and leaky slices fail before any training.
        df = data_spec.load()
        digest = data_digest(df)
        runs.set_tags({"rlpipe.data_digest": digest})
        slices = slice_spec.build(df.index, df["close"].to_numpy(float))
        windows = resolve(slices, df.index)
        raw = raw_features(df)
        stats = fit_stats(raw, role_mask(windows, len(df), "train"))
        market = make_market(df, normalise(raw, stats), data_spec.spread_bps)
        train_windows = [(w.lo, w.hi) for w in windows if w.slice.role == "train"]

        kernels.warm_up()  # load or compile the simulator once, outside the timed learn()
        seed_everything(seed)
        if sim_cfg.kind == "dummy":
            obs_dim = market.n_features + sim_cfg.n_position_vars
            venv: Any = DummyVecEnv([lambda: DummyEnv(obs_dim, sim_cfg.episode_bars)] * sim_cfg.n_envs)
        else:
            venv = VecTradingEnv(market, sim_cfg, reward_cfg, train_windows, full_infos=False)
        venv.seed(seed)
        agent = instantiate(cfg.agent, env=venv, seed=seed, device=device, verbose=0, _convert_="all")
        logger, history = history_logger()
        agent.set_logger(logger)
        t_learn = time.perf_counter()
        agent.learn(
            total_timesteps=int(cfg.timesteps),
            callback=ProgressCallback(int(cfg.timesteps), bool(cfg.progress_bar), run_name),
        )
        learn_s = time.perf_counter() - t_learn
        runs.log_metric_series(history.points)

        a = assess(
            market, sim_cfg, df, slices, windows, slice_spec, gates_cfg, deterministic_policy(agent), seed
        )
        verdict = a.verdict
        model = {
            "name": track.registered_model,
            "seed": seed,
            "timesteps": int(cfg.timesteps),
            "env": sim_cfg.kind,
            "reward": reward_cfg.kind,
            "agent": tags["rlpipe.agent"],
            "config_hash": chash,
            "run_id": run_id,
        }
        log_assessment(a, model, step=int(cfg.timesteps))
        with runs.scratch_dir() as tmp:
            zip_path = Path(tmp) / "sb3_policy.zip"
            agent.save(zip_path)
            meta = {
                "algo": type(agent).__name__,
                "env_kind": "management" if sim_cfg.kind == "management" else "baseline",
                "feature_stats": stats.to_dict(),
                "sim": sim_cfg.__dict__,
                "seed": seed,
                "config_hash": chash,
                "data_digest": digest,
                "embargo": slice_spec.embargo,
                "train_windows": [
                    [str(w.slice.start), str(w.slice.end)] for w in windows if w.slice.role == "train"
                ],
            }
            model_uri = tpolicy.log_policy(zip_path, meta)
        version = registry.register(
            model_uri,
            track.registered_model,
            run_id,
            {
                "rlpipe.verdict": verdict,
                "rlpipe.config_hash": chash,
                "rlpipe.seed": str(seed),
                "rlpipe.sweep_id": tags["rlpipe.sweep_id"],
            },
        )
        if verdict == RETEST:  # run gates passed; the sweep step decides about Production
            registry.transition(
                track.registered_model,
                version,
                "Staging",
                "challenger",
                f"run {run_id} passed its run gates ({a.reason})",
            )
        overhead_s = time.perf_counter() - t_start - learn_s
        runs.log_metrics(
            {
                "time/learn_s": learn_s,
                "time/overhead_s": overhead_s,
                "time/train_steps_per_s": int(cfg.timesteps) / max(learn_s, 1e-9),
            }
        )
        runs.set_tags({"rlpipe.model_version": version})
    test = a.aggregates["test"]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "verdict": verdict,
        "model_version": version,
        "test_total": test.get("total", math.nan),
        "test_max_drawdown": test.get("max_drawdown", math.nan),
        "learn_s": learn_s,
        "overhead_s": overhead_s,
        "config_hash": chash,
    }
    log.info(
        "%s  verdict=%s  test total after fees=%+.2f%%  max drawdown=%.2f%%  run=%s",
        run_name,
        verdict,
        100 * summary["test_total"],
        100 * summary["test_max_drawdown"],
        run_id,
    )
    return summary


def sweep_metric(summary: dict[str, Any]) -> float:
    """The value a sweeper optimises: the test total after fees (NaN for a failed job)."""
    value = summary.get("test_total", math.nan)
    return float(value) if np.isfinite(value) else math.nan
