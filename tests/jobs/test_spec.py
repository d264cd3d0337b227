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


def test_the_smoke_jobs_hash_is_the_one_it_had_before_the_kinds_and_lengths(smoke_job):
    """A configuration keeps its hash across the job kinds and the `checkpoints` -> `lengths` rename
    (its resumable state's folder, its seeds' grouping with earlier runs): a change that moves this
    re-hashes every configuration, and must say so."""
    assert config_hash(as_config(smoke_job("seed=4"))) == "4ca239252663"
    assert config_hash(as_config(smoke_job("lengths=[128]"))) == "7af3537c8684"  # was checkpoints=[128]


def test_a_job_records_its_kind_as_the_top_level_keys_it_was_configured_by(smoke_job):
    fresh = as_config(smoke_job())
    continuation = {
        "_target_": "rlpipe.jobs.job_config.ContinuationSpec",
        "data": "mix",
        "recent_fraction": 0.7,
    }
    kind = {
        "init_from": None,
        "lr_multiplier": 0.5,
        "continuation": continuation,
        "pbt": None,
        "weekly": None,
    }
    assert {k: fresh[k] for k in kind} == kind and "kind" not in fresh and fresh["lengths"] == []
    continued = as_config(smoke_job("init_from=models:/p/2", "lr_multiplier=0.3", "continuation.data=all"))
    assert {k: continued[k] for k in kind} == {
        **kind,
        "init_from": "models:/p/2",
        "lr_multiplier": 0.3,
        "continuation": {**continuation, "data": "all"},
    }
    assert config_hash(continued) != config_hash(fresh)
    pbt = as_config(smoke_job("experiment=pbt"))
    assert pbt["pbt"]["_target_"] == "rlpipe.jobs.pbt_population.PBTSpec" and pbt["init_from"] is None
