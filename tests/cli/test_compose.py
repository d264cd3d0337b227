"""Composition: a Hydra config becomes the typed job it describes, or a clear error before anything runs."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.cli.compose import agent_spec, check_keys, check_required, evaluate_job, train_job
from rlpipe.data.data_config import DataSpec
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError
from rlpipe.tracking.config import TrackingConfig
from tests.support.project import CONF


def test_train_config_becomes_a_typed_job(compose_cfg, tracking_uri):
    job = train_job(compose_cfg("seed=9", "env=baseline", "agent=dqn"))
    assert (job.seed, job.timesteps, job.device, job.progress_bar) == (9, 512, "auto", False)
    assert isinstance(job.data, DataSpec) and isinstance(job.env, SimConfig) and job.env.kind == "baseline"
    assert isinstance(job.agent, AgentSpec) and job.agent.target == "stable_baselines3.DQN"
    assert job.agent.kwargs["buffer_size"] == 100000 and "_target_" not in job.agent.kwargs
    assert job.tracking == TrackingConfig(tracking_uri, "rlpipe", "rlpipe-policy")
    assert job.run_name == "s9-dqn-baseline-pnl_fees-t512"  # outside a sweep: the seed, then the label


def test_evaluate_config_becomes_a_typed_job():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=["model=models:/m/3", "seed=4", "tracking.uri=sqlite:///x.db"])
    job = evaluate_job(cfg)
    assert (job.model, job.seed, job.slices.kind) == ("models:/m/3", 4, "walk_forward")
    assert job.tracking.uri == "sqlite:///x.db"


def test_missing_required_value_is_reported():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["data=csv"])
    with pytest.raises(ConfigError, match=r"required value\(s\) not set: data\.path; pass them as key=value"):
        check_required(cfg)
    with pytest.raises(ConfigError, match=r"data\.path"):
        train_job(cfg)


def test_agent_without_target_is_refused(compose_cfg):
    cfg = compose_cfg("~agent._target_")
    with pytest.raises(ConfigError, match=r"agent\._target_ is missing"):
        agent_spec(cfg.agent)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("+foo=1", "foo"),
        ("+env.stakee=1", "env.stakee"),
        ("+slices.windows.0.weight=2", "slices.windows.0.weight"),
    ],
)
def test_a_key_added_outside_the_schema_is_refused(compose_cfg, override, key):
    cfg = compose_cfg(override)
    message = (
        f"unknown config key(s) {key}: no schema declares them (an override +key=value adds a key); "
        "remove them or fix the spelling (--cfg job lists every key)"
    )
    with pytest.raises(ConfigError) as exc:
        train_job(cfg)
    assert str(exc.value) == message


def test_added_agent_keys_are_left_to_the_agent_check(compose_cfg):
    # the agent group is open: AgentSpec.check names a typo there
    check_keys(compose_cfg("+agent.sde_sample_freq=4"))


def test_promote_and_evaluate_configs_refuse_added_keys():
    with initialize_config_dir(str(CONF), version_base="1.3"):
        promote = compose("promote", overrides=["+dry=1"])
        evaluate = compose("evaluate", overrides=["+x.y=1"])
    with pytest.raises(ConfigError, match=r"^unknown config key\(s\) dry: "):
        check_keys(promote)
    with pytest.raises(ConfigError, match=r"^unknown config key\(s\) x: "):
        evaluate_job(evaluate)
