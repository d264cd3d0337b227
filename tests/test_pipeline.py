"""The real pipeline through the real CLI: runs, params, metrics, tags, artifacts, registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient

from rlpipe.data.features import raw_features
from rlpipe.pipeline import run
from rlpipe.tracking.policy import POSITION_COLUMNS
from tests.conftest import ROOT


def cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RLPIPE_ROOT": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "rlpipe.train",
        "-m",
        f"hydra.sweep.dir={tmp_path}/multirun",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def runs_of(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    return client.search_runs(
        [exp.experiment_id],
        filter_string="tags.`rlpipe.kind` = 'job'",
        order_by=["attributes.start_time ASC"],
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    uri = f"sqlite:///{tmp}/mlflow.db"
    proc = cli(tmp, "seed=1,2", "experiment=smoke", f"tracking.uri={uri}")
    return proc, uri


def test_smoke_sweep_leaves_two_finished_runs(sweep):
    proc, uri = sweep
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = runs_of(uri)
    assert [r.info.status for r in found] == ["FINISHED", "FINISHED"]
    assert sorted(r.data.params["seed"] for r in found) == ["1", "2"]
    assert "sweep" in proc.stdout and "verdict" in proc.stdout  # the table for people


def test_runs_carry_params_tags_and_metrics(sweep):
    _, uri = sweep
    found = runs_of(uri)
    for r in found:
        p, t, m = r.data.params, r.data.tags, r.data.metrics
        assert p["timesteps"] == "512" and p["env.kind"] == "management" and p["reward.kind"] == "pnl_fees"
        assert p["agent._target_"] == "stable_baselines3.PPO"
        assert t["rlpipe.verdict"] in ("reject", "retest")
        assert len(t["rlpipe.git_sha"]) >= 7 and len(t["rlpipe.data_digest"]) == 16
        for key in (
            "test/test_bull_1/total",
            "test/test_bear_2/max_drawdown",
            "validation/val_bull_1/sharpe",
            "train/bull_1/fees",
            "test/consistency",
            "test/worst_slice_total",
            "test/best_slice_share",
            "gate/pass_majority_slices",
            "gate/drawdown_under_cap",
            "gate/no_single_slice_dependency",
            "train/time/fps",
            "time/overhead_s",
        ):
            assert key in m, key
        assert m["gate/drawdown_under_cap"] in (0.0, 1.0)
        # the per-slice total is after fees: before-fees pnl minus fees
        tot = m["test/test_bull_1/total"]
        assert tot == pytest.approx(m["test/test_bull_1/pnl_before_fees"] - m["test/test_bull_1/fees"])
    a, b = found
    assert a.data.tags["rlpipe.sweep_id"] == b.data.tags["rlpipe.sweep_id"] != "single"
    assert a.data.tags["rlpipe.config_hash"] == b.data.tags["rlpipe.config_hash"]
    history = MlflowClient(uri).get_metric_history(a.info.run_id, "train/time/fps")
    assert history and all(h.step > 0 for h in history)


def test_runs_carry_artifacts(sweep):
    _, uri = sweep
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    for r in runs_of(uri):
        names = {f.path for f in client.list_artifacts(r.info.run_id)}
        assert {"report", "plots", "config"} <= names
        assert {f.path for f in client.list_artifacts(r.info.run_id, "report")} == {
            "report/report.md",
            "report/report.json",
        }
        plots = [f.path for f in client.list_artifacts(r.info.run_id, "plots")]
        assert len(plots) == 14 and all(p.endswith(".png") for p in plots)
        report = mlflow.artifacts.load_text(f"runs:/{r.info.run_id}/report/report.md")
        assert "## Test slices" in report and "## Gates" in report and "## Decision" in report
        cfg_yaml = mlflow.artifacts.load_text(f"runs:/{r.info.run_id}/config/config.yaml")
        assert "seed: " in cfg_yaml
        env = mlflow.artifacts.load_dict(f"runs:/{r.info.run_id}/config/environment.json")
        assert env["torch"].startswith("2.13") and int(env["torch_threads"]) >= 1 and env["device"] == "cpu"


def test_every_run_registers_a_loadable_policy_version(sweep):
    _, uri = sweep
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    versions = client.search_model_versions("name='rlpipe-policy'")
    assert len(versions) == 2
    by_run = {v.run_id: v for v in versions}
    for r in runs_of(uri):
        v = by_run[r.info.run_id]
        assert v.tags["rlpipe.verdict"] == r.data.tags["rlpipe.verdict"]
        sweep_verdict = r.data.tags["rlpipe.sweep_verdict"]
        assert v.tags["rlpipe.sweep_id"] == r.data.tags["rlpipe.sweep_id"]
        if r.data.tags["rlpipe.verdict"] == "retest":  # passed its run gates: the job staged it
            assert any(
                "Staging @challenger" in val
                for k, val in v.tags.items()
                if k.startswith("rlpipe.transition.")
            )
        if sweep_verdict != "promote":  # the sweep did not promote its configuration: nothing stays staged
            assert v.current_stage == "None"
        else:
            assert v.current_stage in ("Production", "Staging")
    model = mlflow.pyfunc.load_model(f"models:/rlpipe-policy/{versions[0].version}")
    df = instantiate(
        __import__("omegaconf").OmegaConf.load(ROOT / "conf/data/synthetic.yaml"), _convert_="all"
    ).load()
    x = raw_features(df).iloc[100:110].copy()
    for c in POSITION_COLUMNS["management"]:
        x[c] = 0.0
    actions = model.predict(x)
    assert actions.shape == (10,) and set(np.unique(actions)) <= {0, 1, 2}


def test_failing_job_is_recorded_and_does_not_stop_the_sweep(tmp_path, compose_cfg):
    df = instantiate(compose_cfg().data, _convert_="all").load()
    good = tmp_path / "bars.csv"
    df.drop(columns=["regime"]).to_csv(good, index_label="timestamp")
    missing = tmp_path / "nope.csv"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli(
        tmp_path,
        "experiment=smoke",
        "data=csv",
        f"data.path={missing},{good}",
        f"tracking.uri={uri}",
    )
    assert proc.returncode != 0
    found = runs_of(uri)
    assert [r.info.status for r in found] == ["FAILED", "FINISHED"]
    failed = found[0]
    mlflow.set_tracking_uri(uri)
    assert "nope.csv" in failed.data.tags["rlpipe.error"]
    tb = mlflow.artifacts.load_text(f"runs:/{failed.info.run_id}/error/traceback.txt")
    assert "DataError" in tb and "nope.csv" in tb
    out = proc.stdout + proc.stderr
    assert "FAILED" in out and "1 of 2 job(s) failed" in out
    # the sweep-level step still judged the job that finished, and says which one crashed
    assert found[1].data.tags["rlpipe.sweep_verdict"] in ("promote", "reject", "retest")
    client = MlflowClient(uri)
    (parent,) = client.search_runs(
        [found[0].info.experiment_id], filter_string="tags.`rlpipe.kind` = 'sweep'"
    )
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/failed_runs"] == 1.0
    report = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/sweep/report.json")
    assert report["failed_runs"] == [failed.info.run_id]


def test_same_seed_gives_identical_test_metrics_on_cpu(compose_cfg, tracking_uri):
    cfg = compose_cfg("seed=3", "device=cpu")
    first, second = run(cfg), run(cfg)
    client = MlflowClient(tracking_uri)
    m1 = client.get_run(first["run_id"]).data.metrics
    m2 = client.get_run(second["run_id"]).data.metrics
    keys = [k for k in m1 if k.startswith(("test/", "validation/", "gate/"))]
    assert len(keys) > 100
    np.testing.assert_equal({k: m1[k] for k in keys}, {k: m2[k] for k in keys})  # NaN == NaN here
    assert first["config_hash"] == second["config_hash"]


def test_parquet_user_data_runs_the_same_pipeline(tmp_path, compose_cfg, tracking_uri):
    df = instantiate(compose_cfg().data, _convert_="all").load().drop(columns=["regime", "bid", "ask"])
    path = tmp_path / "bars.parquet"
    df.reset_index().to_parquet(path)
    summary = run(compose_cfg("data=parquet", f"data.path={path}"))
    r = MlflowClient(tracking_uri).get_run(summary["run_id"])
    assert r.info.status == "FINISHED" and r.data.params["data.source"] == "parquet"
    assert np.isfinite(r.data.metrics["test/total"])
    # same bars as the synthetic market, without bid/ask: the quote comes from data.spread_bps
    assert "test/test_bull_1/total" in r.data.metrics
    assert r.data.tags["rlpipe.data_digest"] != "" and r.data.params["data.spread_bps"] == "2.0"
