"""The policy model: logged from a run, resolved by any model URI, integrity-checked, same actions as the
backtest on raw bars, and a tampered copy refused before anything of it is read."""

from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.agents.setup import deterministic_policy
from rlpipe.cli.compose import train_job
from rlpipe.data.features import FeatureStats, normalise, raw_features
from rlpipe.envs.dummy import DummyEnv
from rlpipe.envs.market import make_market
from rlpipe.envs.sim import HOLD, BatchSim, SimConfig
from rlpipe.errors import DataError, PolicyError, RegistryError
from rlpipe.jobs.evaluate_job import EvaluateJob, run_evaluate
from rlpipe.jobs.prepare import prepare
from rlpipe.tracking import tags as T
from rlpipe.tracking.integrity import MANIFEST, write_manifest
from rlpipe.tracking.policy import load_policy, log_policy, resolve_model
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.conftest import CONF

WARMUP = 48  # the longest look-back of rlpipe.data.features (48-bar return and moving averages)


class Payload:
    """Unpickling this creates `marker`: the shape of a code-execution payload in a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


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
    out = policy.predict(None, logged.bars)
    n = len(logged.bars)
    sim = _sim(logged.bars, logged, n)
    sim.reset_rows(np.arange(n), np.arange(n), np.full(n, n - 1))  # every env starts flat at its bar
    expected = deterministic_policy(logged.agent)(sim.observe())
    warm = np.arange(n) < WARMUP
    np.testing.assert_array_equal(out["warmup"].to_numpy(), warm)
    assert (out["action"].to_numpy()[warm] == -1).all()
    np.testing.assert_array_equal(out["action"].to_numpy()[~warm], expected[~warm])
    assert len(np.unique(expected[~warm])) > 1 and out.index.equals(logged.bars.index)


def held_positions(
    bars: pd.DataFrame, stats: FeatureStats, env: SimConfig, spread_bps: float, k: int = 5
) -> tuple[pd.DataFrame, np.ndarray]:
    """Envs opened long, short or flat `k` bars before each bar (from bar k on) and held to it.

    Returns their state in natural units (the policy's position columns, indexed by bar time) and
    the simulator's observations of them, one row per such bar.
    """
    n = len(bars)
    rows = np.arange(k, n - 1)
    sim = BatchSim(make_market(bars, normalise(raw_features(bars), stats), spread_bps), env, None, len(rows))
    sides = np.array([1, -1, 0])[rows % 3]
    sim.reset_rows(np.arange(len(rows)), rows - k, np.full(len(rows), n - 1), sides)
    for _ in range(k):
        sim.step(np.full(len(rows), HOLD))
    hpb, held = sim.m.hours_per_bar, sides != 0
    cost = (sim.slot_qty * sim.slot_px).sum(axis=1)
    value = (sim.slot_qty * sim.m.close[sim.t][:, None]).sum(axis=1)
    position = pd.DataFrame({
        "side": sides.astype(float),
        "open_stake": (sim.slot_qty > 0).sum(axis=1) * env.stake,
        "unrealised": np.where(held, sides * (value - cost) / np.where(held, cost, 1.0), 0.0),
        "hours_since_open": np.where(held, (sim.t - sim.last_open_t) * hpb, 0.0),
        "avg_open_hours": np.where(held, (sim.t - sim.slot_t[:, 0]) * hpb, 0.0),
        "hours_since_close": np.where(held, 0.0, (sim.t - sim.last_close_t) * hpb),
    }, index=bars.index[rows])  # fmt: skip
    return position, sim.observe()


def test_a_position_in_natural_units_is_observed_as_the_simulator_observes_it(logged):
    bars = logged.bars
    position, obs = held_positions(bars, logged.data.stats, logged.job.env, logged.job.data.spread_bps)
    assert np.abs(position["unrealised"]).max() > 0 and position["hours_since_open"].max() == 5
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    out = policy.predict(None, bars.join(position).fillna(0.0)).loc[position.index]
    expected = deterministic_policy(logged.agent)(obs)
    live = ~out["warmup"].to_numpy()
    np.testing.assert_array_equal(out["action"].to_numpy()[live], expected[live])
    assert len(np.unique(expected[live])) > 1


def test_bars_the_policy_cannot_read_are_refused_with_a_clear_error(logged):
    policy = load_policy(logged.tracker, resolve_model(logged.tracker, "models:/p/1"))
    bars = logged.bars
    with pytest.raises(PolicyError, match=r"bars are 4 h apart .* trained on 1 h bars"):
        policy.predict(None, bars.iloc[::4])
    with pytest.raises(PolicyError, match="column 'side' must be -1, 0 or 1, got 2 at"):
        policy.predict(None, bars.assign(side=2.0))
    with pytest.raises(PolicyError, match="'timestamp' column or a DatetimeIndex"):
        policy.predict(None, bars.reset_index(drop=True))
    with pytest.raises(DataError, match="policy input: timestamps not strictly increasing"):
        policy.predict(None, bars.iloc[::-1])
    by_column = bars.reset_index(names="timestamp").assign(timestamp=lambda d: d["timestamp"].astype(str))
    np.testing.assert_array_equal(
        policy.predict(None, by_column)["action"], policy.predict(None, bars)["action"]
    )


def _tamper(folder: Path, how: str, marker: Path) -> None:
    payload = pickle.dumps(Payload(marker))
    if how == "weights":
        torch.save({"action_net.weight": Payload(marker)}, folder / "artifacts" / "weights.pt")
    elif how == "python_model.pkl":
        (folder / "python_model.pkl").write_bytes(payload)
    elif how == "code":
        code = folder / "served_policy.py"
        code.write_text(f"open({str(marker)!r}, 'w')\n" + code.read_text())
    elif how == "sb3_zip":
        with zipfile.ZipFile(folder / "artifacts" / "sb3_policy.zip", "w") as z:
            z.writestr("data", json.dumps({"policy_class": {":serialized:": payload.hex()}}))
    elif how == "manifest_rewritten":  # the attacker also recomputes the manifest in the artifact
        torch.save({"action_net.weight": Payload(marker)}, folder / "artifacts" / "weights.pt")
        write_manifest(folder)


@pytest.mark.parametrize(
    ("how", "file", "problem"),
    [
        ("weights", "artifacts/weights.pt", "differs from the manifest"),
        ("python_model.pkl", "python_model.pkl", "not in the manifest"),
        ("code", "served_policy.py", "differs from the manifest"),
        ("sb3_zip", "artifacts/sb3_policy.zip", "not in the manifest"),
        ("manifest_rewritten", MANIFEST, "differs from the recorded"),
    ],
)
def test_a_tampered_policy_is_refused_and_its_payload_never_runs(logged, fresh, tmp_path, how, file, problem):
    ref = resolve_model(logged.tracker, fresh)
    marker = tmp_path / "pwned"
    _tamper(_folder(ref), how, marker)
    with pytest.raises(PolicyError, match=f"refusing policy {fresh}: {file}: .*{problem}"):
        load_policy(logged.tracker, ref)
    assert not marker.exists()
    if how in ("weights", "sb3_zip"):  # MLflow's own loader checks the files against the manifest too
        with pytest.raises(PolicyError, match=f"{file}: .*{problem}"):
            mlflow.pyfunc.load_model(str(_folder(ref)))
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


def test_unknown_model_uris_are_refused(logged):
    tracker, run_id = logged.tracker, logged.run_id
    with pytest.raises(RegistryError, match="expected models:/<name>@<alias>"):
        resolve_model(tracker, "s3://bucket/policy")
    with pytest.raises(RegistryError, match=f"run {run_id} logged no model named 'other'"):
        resolve_model(tracker, f"runs:/{run_id}/other")
