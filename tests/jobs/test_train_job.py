"""One training job in process, without Hydra's command line: determinism, records, user data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.data.sources import load_data
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.job_config import TrainJob
from rlpipe.jobs.spec import RunContext, as_config
from rlpipe.jobs.train_job import jobs_at_once, run_train
from rlpipe.tracking.config import TrackingConfig
from tests.support.project import CONF


def test_same_seed_gives_identical_metrics_on_cpu(smoke_job, tracking_uri):
    job = smoke_job("seed=3", "force=true")  # force: train again instead of reusing the first run
    first, second = run_train(job), run_train(job)
    client = MlflowClient(tracking_uri)
    m1 = client.get_run(first.run_id).data.metrics
    m2 = client.get_run(second.run_id).data.metrics
    keys = [k for k in m1 if k.startswith(("slice/", "test/", "validation/", "gate/"))]
    assert len(keys) > 100
    np.testing.assert_equal({k: m1[k] for k in keys}, {k: m2[k] for k in keys})  # NaN == NaN here
    assert first.config_hash == second.config_hash and first.run_id != second.run_id
    assert first.test_total == m1["test/total"]
    # what a sweeper optimises is a validation score, never a test result
    assert first.sweep_metric == first.validation_score == m1["validation/sharpe_mean"]


def test_a_sweep_job_shares_the_cores_with_the_drawing_it_leaves_beside_the_next_job(smoke_job, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    drawn, undrawn = smoke_job("plots=true"), smoke_job("plots=false")
    assert jobs_at_once(drawn, RunContext(sweep_id="s", parallel_jobs=1)) == 2  # 2 cores: 1 thread, not 2
    assert jobs_at_once(drawn, RunContext(sweep_id="s", parallel_jobs=2)) == 3
    assert jobs_at_once(undrawn, RunContext(sweep_id="s", parallel_jobs=1)) == 1
    assert jobs_at_once(drawn, RunContext(sweep_id=None, parallel_jobs=1)) == 1  # drawn after it, alone


def test_the_recorded_config_is_the_composed_config(compose_cfg, smoke_job):
    job = smoke_job("seed=5")
    composed = OmegaConf.to_container(compose_cfg("device=cpu", "seed=5"), resolve=True)
    assert (
        composed.pop("routine") is None
    )  # train.yaml's guard slot (routine presets are refused), not a job key
    assert as_config(job) == composed  # what is recorded is what the user asked for, key for key


def test_result_and_run_tell_the_same_story(smoke_job, tracking_uri, tmp_path):
    ctx = RunContext(sweep_id="my-sweep", overrides=("seed=2",), root=tmp_path)
    result = run_train(smoke_job("seed=2"), ctx)
    run = MlflowClient(tracking_uri).get_run(result.run_id)
    t = run.data.tags
    assert t["rlpipe.sweep_id"] == "my-sweep" and t["rlpipe.seed"] == "2" and t["rlpipe.kind"] == "job"
    assert t["rlpipe.git_sha"] == "unknown"  # tmp_path is no git checkout
    assert t["rlpipe.verdict"] == result.verdict and t["rlpipe.model_version"] == result.model_version
    assert t["rlpipe.config_hash"] == result.config_hash
    assert run.data.metrics["test/max_drawdown"] == result.test_max_drawdown
    assert run.data.metrics["time/learn_s"] == result.learn_s > 0
    times = run.data.metrics.items()
    parts = {
        k.removeprefix("time/part/").removesuffix("_s"): v for k, v in times if k.startswith("time/part/")
    }
    assert set(parts) == {"setup", "start", "data", "agent", "evaluation", "record", "registry"}
    assert all(v >= 0 for v in parts.values())
    assert sum(parts.values()) <= run.data.metrics["time/overhead_s"] == result.overhead_s  # the rest: tags
    assert run.data.params["threads"] == "None" and int(run.data.params["threads_resolved"]) >= 1
    version = MlflowClient(tracking_uri).get_model_version("rlpipe-policy", result.model_version)
    assert version.run_id == result.run_id and version.tags["rlpipe.sweep_id"] == "my-sweep"


def test_a_job_built_by_hand_runs_without_hydra(tmp_path):
    """What a notebook does: build the typed job from plain values and run it."""
    values = {g: yaml.safe_load((CONF / g / f"{o}.yaml").read_text()) for g, o in
              (("data", "synthetic"), ("env", "dummy"), ("reward", "pnl_fees"), ("slices", "regimes"),
               ("gates", "default"), ("agent", "a2c"))}  # fmt: skip
    plain = {g: {k: v for k, v in d.items() if k != "_target_"} for g, d in values.items()}
    uri = f"sqlite:///{tmp_path}/store.db"
    job = TrainJob(
        seed=1, timesteps=256, device="cpu", progress_bar=False, threads=1,
        data=DataSpec(**plain["data"]), env=SimConfig(**plain["env"]), reward=RewardConfig(**plain["reward"]),
        agent=AgentSpec(values["agent"]["_target_"], plain["agent"]), slices=SliceSpec(**plain["slices"]),
        gates=GatesConfig(**plain["gates"]), tracking=TrackingConfig(uri, "notebook", "nb-policy"),
    )  # fmt: skip
    result = run_train(job)
    client = MlflowClient(uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "s1-a2c-dummy-pnl_fees-t256"
    assert client.get_experiment(run.info.experiment_id).name == "notebook"
    assert client.get_model_version("nb-policy", result.model_version).run_id == result.run_id
    assert run.data.params["agent._target_"] == "stable_baselines3.A2C"


def test_parquet_user_data_runs_the_same_pipeline(tmp_path, smoke_job, tracking_uri):
    df = load_data(smoke_job().data).drop(columns=["regime", "bid", "ask"])
    path = tmp_path / "bars.parquet"
    df.reset_index().to_parquet(path)
    result = run_train(smoke_job("data=parquet", f"data.path={path}"))
    r = MlflowClient(tracking_uri).get_run(result.run_id)
    assert r.info.status == "FINISHED" and r.data.params["data.source"] == "parquet"
    assert np.isfinite(r.data.metrics["test/total"])
    # same bars as the synthetic market, without bid/ask: the quote comes from data.spread_bps
    assert "slice/test_bull_1/total" in r.data.metrics
    assert r.data.tags["rlpipe.data_digest"] != "" and r.data.params["data.spread_bps"] == "2.0"


def test_a_job_is_a_frozen_value(smoke_job):
    job = smoke_job()
    seed, timesteps = job.seed, job.timesteps
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.seed = seed + 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.timesteps = timesteps * 2  # type: ignore[misc]
    assert (job.seed, job.timesteps) == (seed, timesteps)  # nothing was changed by the attempts
    other = dataclasses.replace(job, seed=seed + 1)  # another seed is another value, built anew
    assert other != job and other == dataclasses.replace(job, seed=seed + 1) and job.seed == seed
    assert job.label == other.label and job.run_name != other.run_name


def test_a_huge_move_planted_after_data_end_changes_nothing_that_decides(smoke_job, tmp_path):
    """Training, validation, selection and gates at an as-of date never read a later bar."""
    df = load_data(smoke_job().data).drop(columns=["regime"])
    later = df.iloc[-200:].copy()
    later.index = later.index + (df.index[-1] - later.index[0]) + (df.index[1] - df.index[0])
    later[["open", "high", "low", "close"]] *= 3.0  # a 200% jump right after the last bar
    df.to_csv(tmp_path / "asof.csv", index_label="timestamp")
    pd.concat([df, later]).to_csv(tmp_path / "planted.csv", index_label="timestamp")
    end = f"data.end={df.index[-1].isoformat()}"
    metrics, digests = [], []
    for name in ("asof", "planted"):
        job = smoke_job("data=csv", f"data.path={tmp_path / name}.csv", end, "seed=2",
                        f"tracking.uri=sqlite:///{tmp_path}/{name}/mlflow.db")  # fmt: skip
        result = run_train(job, RunContext(root=tmp_path))
        run = MlflowClient(job.tracking.uri).get_run(result.run_id)
        clock = ("time/", "curve/time/")
        metrics.append({k: v for k, v in run.data.metrics.items() if not k.startswith(clock)})
        digests.append(run.data.tags["rlpipe.data_digest"])
    assert digests[0] == digests[1] and len(metrics[0]) > 100
    np.testing.assert_equal(metrics[0], metrics[1])
