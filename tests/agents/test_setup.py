"""Device choice, seeding and the direct deterministic policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO

from rlpipe.agents.setup import bound_threads, deterministic_policy, resolve_device, usable_cores
from rlpipe.envs.dummy import DummyEnv
from rlpipe.errors import ConfigError


def test_auto_takes_cuda_only_when_present():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_key():
    with pytest.raises(ConfigError, match="device=cuda"):
        resolve_device("cuda")


def test_unknown_device_is_refused():
    with pytest.raises(ConfigError, match="device='tpu'"):
        resolve_device("tpu")


@pytest.mark.parametrize("algo", [PPO, A2C, DQN])
def test_direct_policy_matches_sb3_predict(algo):
    model = algo("MlpPolicy", DummyEnv(obs_dim=6), seed=3, device="cpu")
    obs = np.random.default_rng(0).uniform(-3, 3, (256, 6)).astype(np.float32)
    expected, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(deterministic_policy(model)(obs), expected)


def test_threads_are_bounded_per_job_and_split_between_parallel_jobs(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert bound_threads(1) == 1 and torch.get_num_threads() == 1
        cores = usable_cores()
        assert bound_threads(None, parallel_jobs=1) == cores and torch.get_num_threads() == cores
        assert bound_threads(None, parallel_jobs=cores) == 1  # N jobs on N cores: one thread each
        assert bound_threads(None, parallel_jobs=4 * cores) == 1  # never fewer than one
        monkeypatch.setenv("OMP_NUM_THREADS", "3")  # what Ray sets for a task with 3 CPUs
        assert bound_threads(None, parallel_jobs=1) == 3 and bound_threads(2) == 2
        from threadpoolctl import threadpool_info

        bound_threads(1)
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())  # BLAS too
    finally:
        torch.set_num_threads(before)
