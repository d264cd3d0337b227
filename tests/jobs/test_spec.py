"""The record of a job: its config derived from the typed job, and the hash that groups its seeds."""

from __future__ import annotations

import dataclasses

from rlpipe.jobs.spec import as_config, config_hash


def test_config_names_every_group_by_its_class_and_keeps_plain_values(smoke_job):
    config = as_config(smoke_job("seed=3"))
    assert config["seed"] == 3 and config["timesteps"] == 512
    assert (
        config["env"]["_target_"] == "rlpipe.envs.sim_config.SimConfig"
        and config["env"]["kind"] == "management"
    )
    assert config["agent"]["_target_"] == "stable_baselines3.PPO" and config["agent"]["policy_kwargs"] == {
        "net_arch": [64, 64]
    }
    assert config["tracking"]["_target_"] == "rlpipe.tracking.config.TrackingConfig"


def test_hash_ignores_the_seed_and_where_runs_are_recorded(smoke_job):
    job = smoke_job("seed=1")
    base = config_hash(as_config(job))
    elsewhere = dataclasses.replace(job.tracking, uri="sqlite:///elsewhere.db", experiment="other")
    assert config_hash(as_config(dataclasses.replace(job, seed=2))) == base
    assert config_hash(as_config(dataclasses.replace(job, tracking=elsewhere, progress_bar=True))) == base
    assert len(base) == 12


def test_hash_changes_with_anything_that_changes_the_training(smoke_job):
    job = smoke_job()
    base = config_hash(as_config(job))
    changed = [
        dataclasses.replace(job, timesteps=1024),
        dataclasses.replace(job, env=dataclasses.replace(job.env, maker_fee=0.0)),
        dataclasses.replace(
            job, agent=dataclasses.replace(job.agent, kwargs={**job.agent.kwargs, "gamma": 0.9})
        ),
        dataclasses.replace(job, data=dataclasses.replace(job.data, seed=99)),
    ]
    hashes = {config_hash(as_config(j)) for j in changed}
    assert base not in hashes and len(hashes) == len(changed)
