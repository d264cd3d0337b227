"""The policy model: logged from a run as data only (no code in the artifact), resolved by any model URI,
integrity-checked against the registry by rlpipe and by MLflow's own loader, same actions as the
backtest on raw bars, and a tampered copy refused before anything of it is read."""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, ErrorCode
from packaging.requirements import Requirement
from packaging.version import Version
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.setup import deterministic_policy
from rlpipe.cli.compose import train_job
from rlpipe.data.features import normalise, raw_features
from rlpipe.envs.dummy import DummyEnv
from rlpipe.envs.market import make_market
from rlpipe.envs.sim import BatchSim
from rlpipe.errors import DataError, PolicyError, RegistryError
from rlpipe.jobs.evaluate_job import run_evaluate
from rlpipe.jobs.job_config import EvaluateJob
from rlpipe.jobs.prepare import prepare
from rlpipe.policy import pyfunc
from rlpipe.policy.logged import LOADER, log_policy
from rlpipe.policy.manifest import MANIFEST, write_manifest
from rlpipe.policy.model import PolicyModel
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.policies import Payload, held_positions
from tests.support.project import CONF

WARMUP = 48  # the longest look-back of rlpipe.data.features (48-bar return and moving averages)


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A briefly trained PPO on the management layout, logged and registered as version 1 of 'p'.

    Module-scoped: the tests that change a policy's files log a version of their own (`fresh`).
    """
    uri = f"sqlite:///{tmp_path_factory.mktemp('policy')}/mlflow.db"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        job = train_job(compose("train", overrides=["experiment=smoke", "device=cpu", f"tracking.uri={uri}"]))
    data = prepare(job.data, job.slices)
    obs_dim = data.market.n_features + job.env.n_position_vars
    agent = PPO("MlpPolicy", DummyVecEnv([lambda: DummyEnv(obs_dim, 32)]), n_steps=32, batch_size=32, seed=1)
    agent.learn(64)
    meta = {"algo": "PPO", "env_kind": job.env.kind, "feature_stats": data.stats.to_dict(),
            "sim": job.env.__dict__, "bar_hours": data.market.hours_per_bar, "seed": 1}  # fmt: skip
    tracker = Tracker(uri, "exp")
    with tracker.run("train", {}) as run:
        policy = log_policy(run, agent, meta, data.df)
    version = Registry(tracker.client, "p").register(
        policy.model, run.run_id, {T.POLICY_SHA256: policy.sha256}
    )
    bars = data.df.drop(columns=["regime"]).iloc[1000:1200]
    return SimpleNamespace(
        tracker=tracker, run_id=run.run_id, version=version, agent=agent, job=job, data=data,
        sha256=policy.sha256, model_id=policy.model.model_id, bars=bars, meta=meta,
    )  # fmt: skip


@pytest.fixture
def fresh(logged) -> str:
    """A new version of 'p' (the same policy, logged again) for a test to tamper with; its URI."""
    with logged.tracker.run("again", {}) as run:
        policy = log_policy(run, logged.agent, logged.meta, logged.data.df)
    version = Registry(logged.tracker.client, "p").register(
        policy.model, run.run_id, {T.POLICY_SHA256: policy.sha256}
    )
    return f"models:/p/{version}"


def _folder(ref) -> Path:
    return Path(urlparse(ref.source).path)


@pytest.fixture
def mlflow_store(logged):
    """MLflow's own loader pointed at the test store, as a user sets MLFLOW_TRACKING_URI."""
    mlflow.set_tracking_uri(logged.tracker.uri)
    yield
    mlflow.set_tracking_uri(None)


def test_the_logged_policy_holds_data_only_and_names_the_installed_loader(logged):
    folder = _folder(resolve_model(logged.tracker, "models:/p/1"))
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    files.discard("registered_model_meta")  # written by MLflow itself when a models:/ URI is loaded
    assert files == {
        "MLmodel", MANIFEST, "requirements.txt", "python_env.yaml", "conda.yaml",
        "input_example.json", "serving_input_example.json",
        "data/policy/weights.pt", "data/policy/architecture.json", "data/policy/meta.json",
    }  # fmt: skip
    flavor = yaml.safe_load((folder / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == LOADER == pyfunc.__name__ and flavor["data"] == "data/policy"
    assert flavor["code"] is None and "python_model" not in flavor and "artifacts" not in flavor


def test_the_policy_requirements_are_installable_pins(logged):
    """Public versions only (no local label such as +cpu, which no index but PyTorch's holds)."""
    folder = _folder(resolve_model(logged.tracker, "models:/p/1"))
    lines = (folder / "requirements.txt").read_text().split()
    pins = {r.name: str(r.specifier) for r in map(Requirement, lines)}
    assert (
        pins["rlpipe"] == f"=={version('rlpipe')}" and pins["torch"] == f"=={torch.__version__.split('+')[0]}"
    )
    assert set(pins) == {"rlpipe", "stable-baselines3", "torch", "gymnasium", "numpy", "pandas", "mlflow"}
    assert all(Version(spec.removeprefix("==")).local is None for spec in pins.values())


def test_every_kind_of_model_uri_resolves_to_the_same_files_and_record(logged):
    tracker, run_id = logged.tracker, logged.run_id
    Registry(tracker.client, "p").transition(logged.version, "Staging", "challenger", "test")
    uris = ("models:/p/1", f"runs:/{run_id}/policy", "models:/p@challenger", f"models:/{logged.model_id}")
    refs = [resolve_model(tracker, u) for u in uris]
    assert {r.run_id for r in refs} == {run_id} and len({r.source for r in refs}) == 1
    assert {r.sha256 for r in refs} == {logged.sha256}
    assert (refs[0].name, refs[0].version, refs[1].version) == ("p", "1", None)


def test_loaded_policy_acts_like_the_trained_agent(logged):
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    rng = np.random.default_rng(0)
    obs = np.concatenate([logged.data.market.features[rng.integers(0, 19000, 3000)],
                          rng.uniform(-3, 3, (3000, 7)).astype(np.float32)], axis=1)  # fmt: skip
    np.testing.assert_array_equal(policy.observation_policy()(obs), deterministic_policy(logged.agent)(obs))
    assert policy.meta["env_kind"] == "management" and policy.stats == logged.data.stats
    assert policy.meta["warmup_bars"] == WARMUP and policy.meta["bar_hours"] == 1.0


def _sim(bars: pd.DataFrame, logged, n: int) -> BatchSim:
    """The simulator with `n` envs on a market of exactly these bars."""
    feats = normalise(raw_features(bars), logged.data.stats)
    market = make_market(bars, feats, logged.job.data.spread_bps)
    return BatchSim(market, logged.job.env, None, n)


def test_raw_bars_give_the_backtest_actions_on_a_flat_position(logged):
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    out = policy.predict(logged.bars)
    n = len(logged.bars)
    sim = _sim(logged.bars, logged, n)
    sim.reset_rows(np.arange(n), np.arange(n), np.full(n, n - 1))  # every env starts flat at its bar
    expected = deterministic_policy(logged.agent)(sim.observe())
    warm = np.arange(n) < WARMUP
    np.testing.assert_array_equal(out["warmup"].to_numpy(), warm)
    assert (out["action"].to_numpy()[warm] == -1).all()
    np.testing.assert_array_equal(out["action"].to_numpy()[~warm], expected[~warm])
    assert len(np.unique(expected[~warm])) > 1 and out.index.equals(logged.bars.index)


def test_a_position_in_natural_units_is_observed_as_the_simulator_observes_it(logged):
    bars = logged.bars
    position, obs = held_positions(bars, logged.data.stats, logged.job.env, logged.job.data.spread_bps)
    assert np.abs(position["unrealised"]).max() > 0 and position["hours_since_open"].max() == 5
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    out = policy.predict(bars.join(position).fillna(0.0)).loc[position.index]
    expected = deterministic_policy(logged.agent)(obs)
    live = ~out["warmup"].to_numpy()
    np.testing.assert_array_equal(out["action"].to_numpy()[live], expected[live])
    assert len(np.unique(expected[live])) > 1


def test_bars_the_policy_cannot_read_are_refused_with_a_clear_error(logged):
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    bars = logged.bars
    with pytest.raises(PolicyError, match=r"bars are 4 h apart .* trained on 1 h bars"):
        policy.predict(bars.iloc[::4])
    with pytest.raises(PolicyError, match="column 'side' must be -1, 0 or 1, got 2 at"):
        policy.predict(bars.assign(side=2.0))
    with pytest.raises(PolicyError, match="'timestamp' column or a DatetimeIndex"):
        policy.predict(bars.reset_index(drop=True))
    with pytest.raises(DataError, match="policy input: timestamps not strictly increasing"):
        policy.predict(bars.iloc[::-1])
    by_column = bars.reset_index(names="timestamp").assign(timestamp=lambda d: d["timestamp"].astype(str))
    np.testing.assert_array_equal(policy.predict(by_column)["action"], policy.predict(bars)["action"])


def test_mlflow_loads_a_registered_policy_through_rlpipes_loader(logged, fresh, mlflow_store):
    """By its version (MLflow notes it beside the files: checked against that version's record) or
    by path (checked against the version that records the manifest's sha256)."""
    ref = resolve_model(logged.tracker, fresh)
    expected = load_policy(logged.tracker, ref).predict(logged.bars)
    assert not (_folder(ref) / "registered_model_meta").exists()
    for uri in (str(_folder(ref)), fresh):
        model = mlflow.pyfunc.load_model(uri)
        assert isinstance(model.get_raw_model(), PolicyModel)
        pd.testing.assert_frame_equal(model.predict(logged.bars), expected)
    assert (_folder(ref) / "registered_model_meta").is_file()


def test_a_policy_logged_before_rlpipe_policy_existed_loads_through_the_loader_it_records(
    logged, mlflow_store, monkeypatch
):
    """Its MLmodel names `rlpipe.tracking.served_policy` and cannot be rewritten (it is a file of the
    manifest the registry vouches for): MLflow still loads it, through the same checks."""
    old = "rlpipe.tracking.served_policy"
    monkeypatch.setattr("rlpipe.policy.logged.LOADER", old)  # log it as the rlpipe of before did
    with logged.tracker.run("logged before the move", {}) as run:
        policy = log_policy(run, logged.agent, logged.meta, logged.data.df)
    version = Registry(logged.tracker.client, "p").register(
        policy.model, run.run_id, {T.POLICY_SHA256: policy.sha256}
    )
    uri = f"models:/p/{version}"
    ref = resolve_model(logged.tracker, uri)
    flavor = yaml.safe_load((_folder(ref) / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["loader_module"] == old
    model = mlflow.pyfunc.load_model(uri)
    assert isinstance(model.get_raw_model(), PolicyModel)
    pd.testing.assert_frame_equal(
        model.predict(logged.bars), load_policy(logged.tracker, ref).predict(logged.bars)
    )
    logged.tracker.client.delete_model_version_tag("p", version, T.POLICY_SHA256)
    with pytest.raises(
        PolicyError, match=f"refusing policy {uri}: the registry records no {T.POLICY_SHA256}"
    ):
        mlflow.pyfunc.load_model(uri)


def test_mlflow_refuses_a_policy_the_registry_does_not_vouch_for(logged, fresh, mlflow_store):
    with logged.tracker.run("unregistered", {}) as run:
        log_policy(run, logged.agent, logged.meta, logged.data.df)
    with pytest.raises(PolicyError, match=r"no version of the registry at .* records the sha256 of its"):
        mlflow.pyfunc.load_model(f"runs:/{run.run_id}/policy")
    logged.tracker.client.delete_model_version_tag("p", fresh.rsplit("/", 1)[1], T.POLICY_SHA256)
    with pytest.raises(
        PolicyError, match=f"refusing policy {fresh}: the registry records no {T.POLICY_SHA256}"
    ):
        mlflow.pyfunc.load_model(fresh)


def test_a_request_too_short_to_act_on_is_refused_with_rlpipes_message(logged, mlflow_store):
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    message = f"policy input: {WARMUP} bars, .* send at least {WARMUP + 1} bars"
    with pytest.raises(PolicyError, match=message):
        policy.predict(logged.bars.iloc[:WARMUP])
    assert policy.predict(logged.bars.iloc[: WARMUP + 1])["warmup"].tolist() == [True] * WARMUP + [False]
    served = mlflow.pyfunc.load_model("models:/p/1")
    for bad, text in ((logged.bars.iloc[:WARMUP], message), (logged.bars.iloc[::4], "bars are 4 h apart")):
        with pytest.raises(MlflowException, match=text) as caught:  # the scoring server's `message`
            served.predict(bad)
        assert caught.value.error_code == ErrorCode.Name(INVALID_PARAMETER_VALUE)


def _tamper(folder: Path, how: str, marker: Path) -> None:
    payload = pickle.dumps(Payload(marker))
    if how == "weights":
        torch.save({"action_net.weight": Payload(marker)}, folder / "data" / "policy" / "weights.pt")
    elif how == "meta":
        meta = folder / "data" / "policy" / "meta.json"
        meta.write_text(meta.read_text().replace('"warmup_bars": 48', '"warmup_bars": 0'))
    elif how == "python_model.pkl":
        (folder / "python_model.pkl").write_bytes(payload)
    elif how == "code":
        (folder / "code").mkdir()
        (folder / "code" / "served_policy.py").write_text(f"open({str(marker)!r}, 'w')\n")
    elif how == "sb3_zip":
        with zipfile.ZipFile(folder / "data" / "policy" / "sb3_policy.zip", "w") as z:
            z.writestr("data", json.dumps({"policy_class": {":serialized:": payload.hex()}}))
    elif how == "manifest_rewritten":  # the attacker also recomputes the manifest in the artifact
        torch.save({"action_net.weight": Payload(marker)}, folder / "data" / "policy" / "weights.pt")
        write_manifest(folder)


@pytest.mark.parametrize(
    ("how", "file", "problem"),
    [
        ("weights", "data/policy/weights.pt", "differs from the manifest"),
        ("meta", "data/policy/meta.json", "differs from the manifest"),
        ("python_model.pkl", "python_model.pkl", "not in the manifest"),
        ("code", "code/served_policy.py", "not in the manifest"),
        ("sb3_zip", "data/policy/sb3_policy.zip", "not in the manifest"),
        ("manifest_rewritten", MANIFEST, "differs from the recorded"),
    ],
)
def test_a_tampered_policy_is_refused_and_its_payload_never_runs(
    logged, fresh, tmp_path, mlflow_store, how, file, problem
):
    ref = resolve_model(logged.tracker, fresh)
    marker = tmp_path / "pwned"
    _tamper(_folder(ref), how, marker)
    with pytest.raises(PolicyError, match=f"refusing policy {fresh}: {file}: .*{problem}"):
        load_policy(logged.tracker, ref)
    assert not marker.exists()
    # MLflow's own loader (rlpipe's loader_module) checks them against the registry's record too
    with pytest.raises(PolicyError, match=f"refusing policy {fresh}: {file}: .*{problem}"):
        mlflow.pyfunc.load_model(fresh)
    assert not marker.exists()


def test_a_policy_without_its_record_or_manifest_is_refused(logged, fresh):
    unrecorded = dataclasses.replace(resolve_model(logged.tracker, fresh), sha256=None)
    with pytest.raises(PolicyError, match=f"{fresh}: the store records no {T.POLICY_SHA256}"):
        load_policy(logged.tracker, unrecorded)
    ref = resolve_model(logged.tracker, fresh)
    (_folder(ref) / MANIFEST).unlink()
    with pytest.raises(PolicyError, match=f"{fresh}: {MANIFEST}: missing"):
        load_policy(logged.tracker, ref)


def test_a_tampered_policy_is_refused_by_evaluate_before_any_run(logged, fresh, tmp_path):
    marker = tmp_path / "pwned"
    _tamper(_folder(resolve_model(logged.tracker, fresh)), "python_model.pkl", marker)
    job = logged.job
    tracking = dataclasses.replace(job.tracking, experiment="exp")
    before = len(logged.tracker.search(""))
    with pytest.raises(PolicyError, match=r"python_model\.pkl: not in the manifest"):
        run_evaluate(EvaluateJob(job.data, job.slices, job.gates, tracking, fresh, 0))
    assert len(logged.tracker.search("")) == before and not marker.exists()  # no evaluation run began


def refusal(tracker: Tracker, uri: str) -> str:
    with pytest.raises(RegistryError) as e:
        resolve_model(tracker, uri)
    assert "\n" not in str(e.value)  # the CLI prints it as one line
    return str(e.value)


def test_a_missing_alias_or_version_names_the_aliases_and_versions_the_model_has(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "rlpipe")
    client = tracker.client
    assert "; the store holds no registered model; pass " in refusal(tracker, "models:/rlpipe-policy@nope")
    for name in ("rlpipe-policy", "other"):
        client.create_registered_model(name)
    for _ in range(3):
        client.create_model_version("rlpipe-policy", source=(tmp_path / "model").as_uri())
    client.set_registered_model_alias("rlpipe-policy", "champion", "3")
    client.set_registered_model_alias("rlpipe-policy", "challenger", "2")
    held = (
        "; rlpipe-policy has the aliases @challenger (v2), @champion (v3) and 3 version(s), v1 to v3; pass "
    )
    for uri in ("models:/rlpipe-policy@nope", "models:/rlpipe-policy/9"):
        text = refusal(tracker, uri)
        assert text.startswith(f"model={uri}: not in the store at {tracker.uri} (") and held in text, text
    assert "; other has no alias and no version; pass " in refusal(tracker, "models:/other@champion")
    # no model of that name: the names there are
    assert "; registered models there: other, rlpipe-policy; pass " in refusal(
        tracker, "models:/nope@champion"
    )
    assert "registered models there" not in refusal(tracker, "runs:/0123456789abcdef0123456789abcdef/policy")


def test_unknown_model_uris_are_refused(logged):
    tracker, run_id = logged.tracker, logged.run_id
    with pytest.raises(RegistryError, match="expected models:/<name>@<alias>"):
        resolve_model(tracker, "s3://bucket/policy")
    with pytest.raises(RegistryError, match=f"run {run_id} logged no model named 'other'"):
        resolve_model(tracker, f"runs:/{run_id}/other")
