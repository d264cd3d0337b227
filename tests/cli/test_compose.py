"""Composition: a Hydra config becomes the typed job it describes, or a clear error before anything runs."""

from __future__ import annotations

import shutil

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.cli.compose import agent_spec, check_keys, check_required, evaluate_job, train_job
from rlpipe.cli.failures import one_line
from rlpipe.data.data_config import DataSpec
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError
from rlpipe.jobs.job_config import ContinuationSpec, Continued, Fresh, PBTRound, WeeklyMember
from rlpipe.jobs.weekly_plan import Assignment, Member
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


def test_a_job_says_what_kind_it_is(compose_cfg):
    assert train_job(compose_cfg()).kind == Fresh()
    continued = train_job(compose_cfg("init_from=models:/p@champion", "lr_multiplier=0.3")).kind
    assert continued == Continued("models:/p@champion", 0.3, ContinuationSpec("mix", 0.7))
    assert continued.continued is continued and Fresh().continued is None
    pbt = train_job(compose_cfg("experiment=pbt", "pbt.member=2", "pbt.interval=100", "pbt.rounds=3"))
    assert isinstance(pbt.kind, PBTRound) and pbt.kind.pbt.member == 2 and pbt.kind.continued is None
    assert pbt.label == "pbt-2-ppo-management-pnl_fees-t300"  # the member, and its steps over all rounds
    assert pbt.kind.tags() == {"rlpipe.weekly_role": "pbt-2"}


def test_a_weekly_member_holds_its_role_and_what_it_continues(compose_cfg):
    cfg = compose_cfg("experiment=weekly", "init_from=models:/rlpipe-policy/3", "lr_multiplier=0.5")
    note, parent = "refiner 1: version 3", Continued("models:/rlpipe-policy/3", 0.5)
    job = train_job(cfg, Assignment(Member("refiner", 1, 6, 900, 0.5), parent.init_from, {}, note))
    assert job.kind == WeeklyMember(job.kind.weekly, "refiner-1", note, parent)
    assert job.label == f"refiner-1-ppo-management-pnl_fees-t{job.timesteps}"
    assert job.run_name == f"s{job.seed}-{job.label}"
    assert job.kind.tags() == {"rlpipe.weekly_role": "refiner-1", "rlpipe.weekly_member": note}
    pinned = job.kind.continuing("models:/rlpipe-policy/4")  # the version the alias named
    assert pinned.continued == Continued("models:/rlpipe-policy/4", 0.5) and pinned.role == "refiner-1"
    explorer = train_job(compose_cfg("experiment=weekly"))
    assert isinstance(explorer.kind, WeeklyMember) and explorer.kind.continued is None


def test_a_pbt_round_refuses_what_it_would_ignore(compose_cfg):
    with pytest.raises(ConfigError) as exc:
        train_job(compose_cfg("experiment=pbt", "init_from=models:/p/1"))
    assert str(exc.value) == (
        "init_from=models:/p/1 with pbt: a PBT population trains its members from scratch; drop "
        "init_from, or run without experiment=pbt"
    )
    both = compose_cfg("experiment=weekly")
    both.pbt = compose_cfg("experiment=pbt").pbt
    with pytest.raises(ConfigError) as exc:
        train_job(both)
    assert str(exc.value) == (
        "pbt and weekly: a job is a PBT round or a weekly member, not both; choose experiment=pbt or "
        "experiment=weekly"
    )


def test_the_former_checkpoints_key_is_refused_naming_lengths(compose_cfg):
    with pytest.raises(ConfigError) as exc:
        train_job(compose_cfg("+checkpoints=[256]"))
    assert str(exc.value) == (
        "config key checkpoints is now lengths: the training lengths scored on validation, e.g. "
        "lengths=[500000,1000000] (the resumable state's cadence and folder are still checkpoint.every "
        "and checkpoint.dir)"
    )
    assert train_job(compose_cfg("lengths=[256]")).lengths == (256,)


def test_a_preset_that_still_sets_checkpoints_is_refused_naming_lengths(tmp_path):
    conf = shutil.copytree(CONF, tmp_path / "conf")
    (conf / "experiment" / "mine.yaml").write_text("# @package _global_\ncheckpoints: [256]\n")
    with (
        initialize_config_dir(str(conf), version_base="1.3"),
        pytest.raises(ConfigCompositionException) as exc,
    ):
        compose("train", overrides=["experiment=mine"])
    assert one_line(exc.value) == (
        "In 'experiment/mine': config key checkpoints is now lengths: the training lengths scored on "
        "validation, e.g. lengths=[500000,1000000] (the resumable state's cadence and folder are still "
        "checkpoint.every and checkpoint.dir)"
    )
