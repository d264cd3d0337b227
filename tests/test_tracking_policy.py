"""The policy model: logged from a run, resolved by any model URI, loaded from its store, same actions."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv

from rlpipe.data.features import FeatureStats, raw_features
from rlpipe.envs.dummy import DummyEnv
from rlpipe.envs.layout import position_vars
from rlpipe.errors import RegistryError
from rlpipe.tracking.policy import load_policy, log_policy, resolve_model
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker


@pytest.fixture
def logged(tracking_uri, tmp_path, smoke_job):
    """A small PPO on the baseline layout, logged and registered as version 1 of 'p'."""
    df = smoke_job().data.load()
    raw = raw_features(df)
    stats = FeatureStats(tuple(raw.columns), tuple(raw.mean()), tuple(raw.std()))
    obs_dim = raw.shape[1] + len(position_vars("baseline"))
    agent = PPO("MlpPolicy", DummyVecEnv([lambda: DummyEnv(obs_dim)]), n_steps=32, batch_size=32, seed=1)
    agent.save(tmp_path / "sb3_policy.zip")
    meta = {"algo": "PPO", "env_kind": "baseline", "feature_stats": stats.to_dict(), "sim": {}, "seed": 1}
    tracker = Tracker(tracking_uri, "exp")
    with tracker.run("train", {}) as run:
        model = log_policy(run, tmp_path / "sb3_policy.zip", meta)
    version = Registry(tracker.client, "p").register(model, run.run_id, {})
    rows = raw.iloc[200:260].copy()
    for c in position_vars("baseline"):
        rows[c] = 0.0
    return tracker, run.run_id, version, agent, stats, rows


def test_every_kind_of_model_uri_resolves_to_the_same_files(logged):
    tracker, run_id, version, *_ = logged
    refs = [resolve_model(tracker, u) for u in ("models:/p/1", f"runs:/{run_id}/policy")]
    Registry(tracker.client, "p").transition(version, "Staging", "challenger", "test")
    refs.append(resolve_model(tracker, "models:/p@challenger"))
    assert {r.run_id for r in refs} == {run_id}
    assert refs[0].source == refs[1].source == refs[2].source
    assert (refs[0].name, refs[0].version, refs[1].version) == ("p", "1", None)


def test_loaded_policy_acts_like_the_trained_agent(logged):
    tracker, _, _, agent, stats, rows = logged
    policy = load_policy(tracker, resolve_model(tracker, "models:/p/1"))
    actions = policy.predict(None, rows)
    feats = (rows[list(stats.columns)].to_numpy() - np.array(stats.mean)) / np.array(stats.std)
    feats = np.clip(np.where(np.isfinite(feats), feats, 0.0), -3, 3)
    obs = np.concatenate([feats, np.zeros((len(rows), 5))], axis=1).astype(np.float32)
    expected, _ = agent.predict(obs, deterministic=True)
    np.testing.assert_array_equal(actions, expected)
    assert policy.meta["env_kind"] == "baseline" and policy.stats == stats


def test_unknown_model_uris_are_refused(logged):
    tracker, run_id, *_ = logged
    with pytest.raises(RegistryError, match="expected models:/<name>@<alias>"):
        resolve_model(tracker, "s3://bucket/policy")
    with pytest.raises(RegistryError, match=f"run {run_id} logged no model named 'other'"):
        resolve_model(tracker, f"runs:/{run_id}/other")
