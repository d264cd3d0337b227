"""`python -m rlpipe.train -m ...` through the real CLI: runs, params, metrics, tags, artifacts, registry."""

from __future__ import annotations

import mlflow
import pytest
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient

from rlpipe.data.sources import load_data
from tests.support.project import ROOT, Sweep, cli, drawn_plots


def runs_of(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    return client.search_runs(
        [exp.experiment_id],
        filter_string="tags.`rlpipe.kind` = 'job'",
        order_by=["attributes.start_time ASC"],
    )


def test_smoke_sweep_leaves_four_finished_runs_and_a_table_of_them(smoke_sweep: Sweep):
    found = runs_of(smoke_sweep.uri)
    assert [r.info.status for r in found] == ["FINISHED"] * 4
    assert sorted((r.data.params["seed"], r.data.params["reward.kind"]) for r in found) == [
        ("1", "pnl"), ("1", "pnl_fees"), ("2", "pnl"), ("2", "pnl_fees"),
    ]  # fmt: skip
    out = smoke_sweep.proc.stdout
    assert "run verdict" in out and "sweep verdict" in out
    for r in found:  # one line per run, with its verdict and run id
        line = next(x for x in out.splitlines() if r.info.run_id[:16] in x and "│" in x)
        assert r.data.tags["rlpipe.verdict"] in line and r.data.tags["rlpipe.sweep_verdict"] in line
    # the closing hint: the store, then the sweep's one-click comparison in the UI on a line of its own
    exp = MlflowClient(smoke_sweep.uri).get_experiment_by_name("rlpipe").experiment_id
    sweep_id = found[0].data.tags["rlpipe.sweep_id"]
    url = f"http://127.0.0.1:5000/#/experiments/{exp}/runs?workflowType=machine_learning&viewStateShareKey=rlpipe-{sweep_id}"
    hint = f"Compare the runs: `make ui STORE={smoke_sweep.uri}`, then open the sweep's saved view"
    assert f"Tracking store: {smoke_sweep.uri}\n{hint}" in out and f"\n  {url}\n" in out


def test_runs_carry_params_tags_and_metrics(smoke_sweep: Sweep):
    found = runs_of(smoke_sweep.uri)
    for r in found:
        p, t, m = r.data.params, r.data.tags, r.data.metrics
        assert p["timesteps"] == "512" and p["env.kind"] == "management" and p["device_resolved"] == "cpu"
        assert p["agent._target_"] == "stable_baselines3.PPO" and p["agent.n_steps"] == "64"
        assert t["rlpipe.verdict"] in ("reject", "retest", "pass")
        assert t["rlpipe.config_label"] == f"ppo-management-{p['reward.kind']}-t512"
        # what the sweep varies first (seed, then reward), then the rest of the configuration's label
        assert r.info.run_name == f"s{p['seed']}-{p['reward.kind']}-ppo-management-t512"
        assert len(t["rlpipe.git_sha"]) >= 7 and len(t["rlpipe.data_digest"]) == 16
        for key in (
            "slice/test_bull_1/total", "slice/test_bear_2/max_drawdown", "slice/val_bull_1/sharpe",
            "slice/bull_1/fees", "test/consistency", "test/worst_slice_total", "test/best_slice_share",
            "train/total", "validation/sharpe_mean", "data/bars_per_year",
            "gate/pass_majority_slices", "gate/drawdown_under_cap", "gate/no_single_slice_dependency",
            "curve/time/fps", "time/overhead_s",  # one smoke rollout: SB3 logs no loss yet
        ):  # fmt: skip
            assert key in m, key
        assert m["gate/drawdown_under_cap"] in (0.0, 1.0)
        # the per-slice total is after fees: before-fees pnl minus fees
        tot = m["slice/test_bull_1/total"]
        assert tot == pytest.approx(m["slice/test_bull_1/pnl_before_fees"] - m["slice/test_bull_1/fees"])
        # one prefix per family: learning curves, data, gates, per-slice backtests (slice/<name>/<metric>),
        # the aggregates that rank and gate (<role>/<aggregate>, nothing below them), timings
        families = {k.split("/")[0] for k in m}
        assert families == {"curve", "data", "gate", "slice", "test", "train", "validation", "time"}, families
        assert all(k.count("/") == 1 for k in m if k.split("/")[0] in ("train", "validation", "test"))
        assert all(k.count("/") == 2 for k in m if k.startswith("slice/"))
        # the description says the verdict, the test total and the score that ranks the run
        first = t["mlflow.note.content"].splitlines()[0]
        assert first.startswith(f"{t['rlpipe.verdict']} · test total ") and "validation sharpe_mean" in first
    assert len({r.data.tags["rlpipe.sweep_id"] for r in found}) == 1
    assert found[0].data.tags["rlpipe.sweep_id"] != "single"
    hashes = {r.data.params["reward.kind"]: set() for r in found}
    for r in found:
        hashes[r.data.params["reward.kind"]].add(r.data.tags["rlpipe.config_hash"])
    assert all(len(h) == 1 for h in hashes.values())  # the seeds of a configuration share its hash
    assert hashes["pnl"] != hashes["pnl_fees"]  # another reward is another configuration
    client = MlflowClient(smoke_sweep.uri)
    history = client.get_metric_history(found[0].info.run_id, "curve/time/fps")
    assert history and all(h.step > 0 for h in history)  # a learning curve, stepped by timesteps
    for key in ("test/total", "slice/test_bull_1/total", "gate/drawdown_under_cap", "data/bars"):
        # one value at step 0: the UI draws it as a bar, not as a one-point curve at the last step
        assert [h.step for h in client.get_metric_history(found[0].info.run_id, key)] == [0], key


def test_runs_carry_artifacts(smoke_sweep: Sweep):
    client = MlflowClient(smoke_sweep.uri)
    for r in runs_of(smoke_sweep.uri):
        run_id = r.info.run_id
        assert {"report", "config", "curves"} <= {f.path for f in client.list_artifacts(run_id)}
        assert {f.path for f in client.list_artifacts(run_id, "report")} == {
            "report/report.md",
            "report/report.json",
        }
        plots = drawn_plots(smoke_sweep.uri, run_id)  # drawn after the job by a process of their own
        assert len(plots) == 14 and all(p.endswith(".png") for p in plots)
        assert client.get_run(run_id).data.tags["rlpipe.tear_sheets"] == "drawn: 14 files"
        assert "plots" in {f.path for f in client.list_artifacts(run_id)}
        report = mlflow.artifacts.load_text(f"{r.info.artifact_uri}/report/report.md")
        assert "## Test slices" in report and "## Gates" in report and "## Decision" in report
        cfg_yaml = mlflow.artifacts.load_text(f"{r.info.artifact_uri}/config/config.yaml")
        assert f"seed: {r.data.params['seed']}" in cfg_yaml and "_target_: stable_baselines3.PPO" in cfg_yaml
        overrides = mlflow.artifacts.load_text(f"{r.info.artifact_uri}/config/overrides.yaml")
        assert f"seed={r.data.params['seed']}" in overrides
        env = mlflow.artifacts.load_dict(f"{r.info.artifact_uri}/config/environment.json")
        assert env["torch"].startswith("2.13") and int(env["torch_threads"]) >= 1 and env["device"] == "cpu"


def test_every_run_registers_a_loadable_policy_version(smoke_sweep: Sweep):
    uri = smoke_sweep.uri
    client = MlflowClient(uri)
    versions = client.search_model_versions("name='rlpipe-policy'")
    assert len(versions) == 4
    by_run = {v.run_id: v for v in versions}
    for r in runs_of(uri):
        v = by_run[r.info.run_id]
        assert v.tags["rlpipe.verdict"] == r.data.tags["rlpipe.verdict"]
        assert v.tags["rlpipe.sweep_id"] == r.data.tags["rlpipe.sweep_id"]
        assert v.tags["rlpipe.policy_sha256"] == r.data.tags["rlpipe.policy_sha256"]
        assert v.tags["rlpipe.sweep_verdict"] == r.data.tags["rlpipe.sweep_verdict"]
        # the smoke preset is registry.promote=false: judged and tagged, never staged or crowned
        assert v.tags["rlpipe.promotable"] == r.data.tags["rlpipe.promotable"] == "false"
        assert v.current_stage == "None" and not v.aliases
        assert not any(k.startswith("rlpipe.transition.") for k in v.tags)
    mlflow.set_tracking_uri(uri)  # as a user loads a registered model
    model = mlflow.pyfunc.load_model(f"models:/rlpipe-policy/{versions[0].version}")
    df = load_data(
        instantiate(
            __import__("omegaconf").OmegaConf.load(ROOT / "conf/data/synthetic.yaml"), _convert_="all"
        )
    )
    bars = df[["open", "high", "low", "close", "volume"]].iloc[100:160]
    out = model.predict(bars)  # raw bars in, an action per bar out
    assert list(out.columns) == ["action", "warmup"] and out.index.equals(bars.index)
    assert out["warmup"].tolist() == [True] * 48 + [False] * 12
    assert (out["action"][out["warmup"]] == -1).all() and set(out["action"][~out["warmup"]]) <= {0, 1, 2}


def test_failing_job_is_recorded_and_does_not_stop_the_sweep(tmp_path, smoke_job):
    df = load_data(smoke_job().data)
    good = tmp_path / "bars.csv"
    df.drop(columns=["regime"]).to_csv(good, index_label="timestamp")
    missing = tmp_path / "nope.csv"  # a bar found bad as the file is read: the job runs, then fails
    bad = df.drop(columns=["regime"]).copy()
    bad.iloc[100, bad.columns.get_loc("close")] = -1.0
    bad.to_csv(missing, index_label="timestamp")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli(
        "rlpipe.train", "-m", f"hydra.sweep.dir={tmp_path}/multirun", "experiment=smoke", "data=csv",
        f"data.path={missing},{good}", f"tracking.uri={uri}",
    )  # fmt: skip
    assert proc.returncode == 2  # the only failure is a user error (a missing file)
    found = runs_of(uri)
    assert [r.info.status for r in found] == ["FAILED", "FINISHED"]
    failed = found[0]
    assert "nope.csv" in failed.data.tags["rlpipe.error"]
    tb = mlflow.artifacts.load_text(f"{failed.info.artifact_uri}/error/traceback.txt")
    assert "DataError" in tb and "nope.csv" in tb
    out = proc.stdout + proc.stderr
    assert "FAILED" in out and "1 of 2 job(s) failed" in out
    # the sweep-level step still judged the job that finished, and says which one crashed
    assert found[1].data.tags["rlpipe.sweep_verdict"] in ("promote", "reject", "retest")
    client = MlflowClient(uri)
    (parent,) = client.search_runs(
        [found[0].info.experiment_id], filter_string="tags.`rlpipe.kind` = 'sweep'"
    )
    assert parent.info.status == "FAILED" and parent.data.metrics["sweep/failed_runs"] == 1.0
    assert parent.data.tags["rlpipe.error"] == "1 of 2 job(s) failed; see their runs"
    report = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/sweep/report.json")
    assert report["failed_runs"] == [failed.info.run_id]
