"""The config schemas: every group option and preset composes and instantiates; typos fail at start-up."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf.errors import ConfigKeyError, ValidationError

from rlpipe.cli.compose import agent_spec, routine_job, train_job
from rlpipe.cli.schemas import GROUPS
from rlpipe.data.slices import build_slices
from rlpipe.data.sources import load_data
from rlpipe.errors import ConfigError
from rlpipe.jobs.routine_config import RoutineSpec
from tests.support.project import CONF

EXPECTED = GROUPS  # every group with a schema instantiates to its runtime dataclass


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in (*EXPECTED, "agent") for o in options(g)])
def test_every_group_option_composes_and_instantiates(compose_cfg, group, option):
    extra = ["data.path=somewhere.csv"] if group == "data" and option != "synthetic" else []
    cfg = compose_cfg(f"{group}={option}", *extra)
    if group == "agent":
        spec = agent_spec(cfg.agent)
        spec.check()
        assert spec.target == f"stable_baselines3.{option.upper()}" and spec.name == option
        return
    obj = instantiate(cfg[group], _convert_="all")
    assert isinstance(obj, EXPECTED[group])


ROUTINE_PRESETS = {"routine": "default", "routine_smoke": "smoke"}
"""The presets of `python -m rlpipe.routine` (conf/routine.yaml), each selecting a `routine` option;
every other preset is one of `python -m rlpipe.train` (conf/train.yaml)."""


@pytest.mark.parametrize("preset", sorted(set(options("experiment")) - set(ROUTINE_PRESETS)))
def test_every_training_preset_composes(compose_cfg, preset):
    cfg = compose_cfg(f"experiment={preset}", smoke=False)
    assert cfg.timesteps > 0 and cfg.routine is None
    for group, cls in EXPECTED.items():
        assert isinstance(instantiate(cfg[group], _convert_="all"), cls)


def _routine_cfg(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("routine", overrides=list(overrides))


@pytest.mark.parametrize(("preset", "option"), sorted(ROUTINE_PRESETS.items()))
def test_every_routine_preset_composes_with_the_routine_config_as_its_routine_option(preset, option):
    job = routine_job(_routine_cfg(f"experiment={preset}"))
    assert isinstance(job.routine, RoutineSpec)
    assert job.routine == routine_job(_routine_cfg(f"routine={option}")).routine  # routine=smoke still works


@pytest.mark.parametrize("preset", sorted(ROUTINE_PRESETS))
def test_a_training_job_refuses_a_routine_preset_naming_the_routine_command(compose_cfg, preset):
    with pytest.raises(ConfigError, match=r"run python -m rlpipe\.routine experiment=routine_smoke"):
        train_job(compose_cfg(f"experiment={preset}", smoke=False))


def test_smoke_preset_trains_a_single_ppo_rollout_in_short_episodes(compose_cfg):
    cfg, default = compose_cfg(), compose_cfg(smoke=False)
    assert cfg.timesteps <= cfg.env.n_envs * cfg.agent.n_steps  # learn() stops after one rollout
    assert cfg.env.episode_bars < default.env.episode_bars and cfg.env.episode_bars_std == 0
    assert cfg.progress_bar is False  # test logs stay readable


def test_default_declared_slices_match_the_synthetic_schedule(compose_cfg):
    cfg = compose_cfg()
    df = load_data(instantiate(cfg.data, _convert_="all"))
    slices = build_slices(instantiate(cfg.slices, _convert_="all"), df.index, df["close"].to_numpy())
    for s in slices:
        window = df.loc[s.start : s.end, "regime"]
        assert set(window) == {s.regime}, s.name
    assert {s.regime for s in slices if s.role == "test"} == {"bull", "bear", "sideways"}


def test_unknown_key_override_fails_at_startup():
    with (
        initialize_config_dir(str(CONF), version_base="1.3"),
        pytest.raises(ConfigCompositionException) as exc,
    ):
        compose("train", overrides=["env.stakee=0.5"])
    assert "stakee" in str(exc.value.__cause__ or exc.value)


def test_wrong_type_override_fails_at_startup():
    with (
        initialize_config_dir(str(CONF), version_base="1.3"),
        pytest.raises((ConfigCompositionException, ValidationError)) as exc,
    ):
        compose("train", overrides=["env.n_envs=many"])
    assert "n_envs" in str(exc.value.__cause__ or exc.value)


def test_unknown_agent_key_is_named(compose_cfg):
    cfg = compose_cfg("+agent.learnin_rate=0.1")
    with pytest.raises(
        ConfigError, match=r"agent\.learnin_rate is not a parameter of stable_baselines3\.PPO"
    ):
        agent_spec(cfg.agent).check()


def test_invalid_env_value_names_the_key(compose_cfg):
    cfg = compose_cfg("env.close_mode=some")
    with pytest.raises(Exception, match=r"env\.close_mode"):
        instantiate(cfg.env, _convert_="all")


def test_schema_rejects_unknown_top_level_key():
    with (
        initialize_config_dir(str(CONF), version_base="1.3"),
        pytest.raises((ConfigCompositionException, ConfigKeyError)),
    ):
        compose("train", overrides=["timestep=5"])
