"""Checks before anything is recorded: bad steps, seeds, agents, names and stores are refused with
the config key, the rule and what to do; the name rules agree with MLflow's own validation."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import _validate_length_limit, _validate_metric_name, _validate_model_name

from rlpipe.agents.agent_spec import AgentSpec
from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.data.slices import build_slices
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError, DataError, SliceError
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs import train_job
from rlpipe.jobs.checks import SLICE_NAME_MAX, check_slice_names, check_store, check_tracking, check_train_job
from rlpipe.jobs.job_config import ContinuationSpec, Continued, TrainJob, WeeklyMember
from rlpipe.jobs.weekly_plan import WeeklySpec
from rlpipe.tracking.config import TrackingConfig

WINDOW = {"role": "test", "regime": "bull", "start": "2022-01-01", "end": "2022-02-01"}
TRAIN = {"name": "train_1", "role": "train", "regime": "bear", "start": "2021-10-01", "end": "2021-12-01"}
WINDOWS = (TRAIN, {"name": "bull_1", **WINDOW})
"""A training window and a test window a month after it: declared slices that pass."""
LONGEST_KEY = "slice/{}/baseline_buy_and_hold_total"  # the longest metric key of a slice


def valid_job(tracking: TrackingConfig, **values: Any) -> TrainJob:
    """A TrainJob that passes every check unless `values` change it."""
    job = TrainJob(
        seed=1,
        timesteps=512,
        device="cpu",
        progress_bar=False,
        threads=None,
        data=DataSpec(),
        env=SimConfig(),
        reward=RewardConfig(),
        agent=AgentSpec("stable_baselines3.PPO", {"n_steps": 64}),
        slices=SliceSpec(windows=list(WINDOWS)),
        gates=GatesConfig(),
        tracking=tracking,
    )
    return replace(job, **values)


@pytest.fixture
def job(tmp_path: Path) -> TrainJob:
    return valid_job(TrackingConfig(f"sqlite:///{tmp_path}/mlruns/mlflow.db"))


@pytest.mark.parametrize("threads", [0, -2])
def test_fewer_than_one_thread_is_refused(job, threads):
    assert refusal(check_train_job, valid_job(job.tracking, threads=threads)) == (
        f"threads={threads}: a job needs at least one thread; pass threads=null to take the usable "
        "cores divided by the launcher's parallel jobs"
    )


def refusal(check, *args) -> str:
    with pytest.raises(ConfigError) as exc:
        check(*args)
    return str(exc.value)


def mlflow_accepts(validate, *args) -> bool:
    try:
        validate(*args)
    except MlflowException:
        return False
    return True


def test_the_smoke_job_passes_every_check_and_creates_nothing(smoke_job, tmp_path):
    job = smoke_job()
    check_train_job(job)
    assert not (tmp_path / "mlruns").exists()  # the store check looks, it does not create


@pytest.mark.parametrize(
    ("start", "how", "edge"),
    [("2022-01-15 00:00", "overlaps", ""), ("2022-01-20 00:00", "starts 1 days 01:00:00 after", " ends")],
    ids=["overlapping", "within_the_embargo"],
)
def test_a_leaky_validation_window_is_refused_before_anything_is_recorded_or_trained(
    smoke_job, tmp_path, monkeypatch, start, how, edge
):
    # conf/slices/regimes.yaml: training ends 2022-01-18 23:00, val_bull_1 (windows[6]) starts 2022-01-26
    job = smoke_job(f"slices.windows.6.start='{start}'")
    trained = []
    monkeypatch.setattr(train_job, "learn", lambda *a, **k: trained.append(a))
    with pytest.raises(SliceError) as err:
        train_job.run_train(job)
    assert str(err.value) == (
        f"validation slice 'val_bull_1' [{start}:00+00:00 .. 2022-03-11 23:00:00+00:00] {how} training "
        f"slice 'bear_2' [2021-11-27 00:00:00+00:00 .. 2022-01-18 23:00:00+00:00]{edge}, within the "
        "embargo of 7 days 00:00:00 (slices.embargo); move or shorten one of the two windows so that "
        "more than 7 days 00:00:00 separates them, or lower slices.embargo"
    )
    assert trained == [] and not (tmp_path / "mlruns").exists()  # no store, no run, no training
    assert not (tmp_path / "checkpoints").exists()


def test_a_valid_job_passes_at_the_edges_of_the_seed_range(job):
    for seed in (0, 2**32 - 1):
        check_train_job(valid_job(job.tracking, seed=seed, timesteps=1))


@pytest.mark.parametrize("steps", [0, -5])
def test_timesteps_below_one_are_refused(job, steps):
    assert refusal(check_train_job, valid_job(job.tracking, timesteps=steps)) == (
        f"timesteps={steps}: the number of training steps must be at least 1 (the smoke preset uses "
        "512); pass e.g. timesteps=20000"
    )


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_outside_numpy_range_is_refused(job, seed):
    assert refusal(check_train_job, valid_job(job.tracking, seed=seed)) == (
        f"seed={seed}: a seed must be an integer in [0, 4294967295] (numpy and torch refuse others); "
        "pass e.g. seed=7"
    )


def test_unknown_agent_target_is_refused_before_anything_else(job):
    bad = valid_job(job.tracking, agent=AgentSpec("stable_baselines3.PPX", {}))
    assert refusal(check_train_job, bad) == (
        "agent._target_='stable_baselines3.PPX' cannot be imported "
        "(module 'stable_baselines3' has no attribute 'PPX')"
    )


BAD_SLICE_NAMES = ["a/b", "a:b", ".", "..", "", "bull\n1", "x" * (SLICE_NAME_MAX + 1), "bull,1"]
GOOD_SLICE_NAMES = ["bull 1", "val-bear.2", "régime_été", "x" * SLICE_NAME_MAX, "..a"]


@pytest.mark.parametrize("name", BAD_SLICE_NAMES)
def test_slice_names_mlflow_refuses_are_refused(job, name):
    spec = SliceSpec(windows=[{"name": "bull_1", **WINDOW}, {"name": name, **WINDOW}])
    assert refusal(check_train_job, valid_job(job.tracking, slices=spec)) == (
        f"slices.windows[1].name={name!r}: slice names become MLflow metric keys slice/<slice>/<metric>; "
        f"use 1 to 216 letters, digits, '_', '-', '.' or spaces (no '/' or ':'), not '.' or '..'"
    )


def test_the_slice_name_rule_is_mlflows_metric_key_rule():
    def mlflow_takes(name: str) -> bool:
        key = LONGEST_KEY.format(name)
        return mlflow_accepts(_validate_metric_name, key) and mlflow_accepts(
            _validate_length_limit, "Metric name", 250, key
        )

    for name in GOOD_SLICE_NAMES:
        check_slice_names(SliceSpec(windows=[{"name": name, **WINDOW}]))
        assert mlflow_takes(name), name
    # what MLflow refuses is refused; '/' and ':' are refused although MLflow (on Linux) takes them
    assert [n for n in BAD_SLICE_NAMES if not mlflow_takes(n)] == [
        ".", "..", "", "bull\n1", "x" * (SLICE_NAME_MAX + 1), "bull,1"
    ]  # fmt: skip


def test_walk_forward_slices_have_generated_names():
    """A walk-forward spec's slices come from the data, named train, validation, fold1, ...: the names
    in its `windows` are never used, so they are not checked, and the generated ones pass the rule."""
    window = {"name": "a/b", **WINDOW}
    spec = SliceSpec(
        kind="walk_forward", embargo="1D", windows=[window], folds=3, test_bars=48, validation_bars=48
    )
    check_slice_names(spec)
    with pytest.raises(ConfigError, match=r"slices\.windows\[0\]\.name='a/b'"):
        check_slice_names(replace(spec, kind="declared"))  # the same window, declared, is refused
    index = pd.date_range("2022-01-01", periods=24 * 30, freq="h", tz="UTC")
    close = 100.0 * np.exp(np.linspace(0.0, 0.1, len(index)))
    names = [s.name for s in build_slices(spec, index, close)]
    assert names == ["train", "validation", "fold1", "fold2", "fold3"]
    check_slice_names(SliceSpec(windows=[{"name": name, **WINDOW} for name in names]))


@pytest.mark.parametrize("name", ["a/b", "a:b", "", "  ", ".", "..x"])
def test_registered_model_names_mlflow_refuses_are_refused(job, name):
    tracking = TrackingConfig(job.tracking.uri, "rlpipe", name)
    assert not mlflow_accepts(_validate_model_name, name)
    assert refusal(check_tracking, tracking) == (
        f"tracking.registered_model={name!r}: MLflow refuses model names that are blank, contain '/' "
        "or ':', or are '.' or start with '..'; pass e.g. tracking.registered_model=rlpipe-policy"
    )


@pytest.mark.parametrize("name", ["rlpipe-policy", "my model v2", "a.b", "x..y"])
def test_registered_model_names_mlflow_takes_pass(job, name):
    assert mlflow_accepts(_validate_model_name, name)
    check_tracking(TrackingConfig(job.tracking.uri, "rlpipe", name))


@pytest.mark.parametrize("name", ["", " ", "x" * 501])
def test_blank_or_long_experiment_names_are_refused(job, name):
    tracking = TrackingConfig(job.tracking.uri, name, "rlpipe-policy")
    assert refusal(check_tracking, tracking) == (
        f"tracking.experiment={name!r}: MLflow needs a non-empty experiment name of at most 500 "
        "characters; pass e.g. tracking.experiment=rlpipe"
    )


def test_a_store_under_a_file_is_refused_naming_the_uri(tmp_path):
    (tmp_path / "afile").write_text("")
    uri = f"sqlite:///{tmp_path}/afile/mlruns/mlflow.db"
    assert refusal(check_store, uri) == (
        f"tracking.uri={uri}: {tmp_path}/afile is a file, not a folder, so the local store cannot be "
        "created or written there; pass a writable place, e.g. tracking.uri=sqlite:///<your folder>/mlflow.db"
    )


def test_a_job_with_an_unwritable_store_is_refused(tmp_path, job):
    (tmp_path / "afile").write_text("")
    tracking = TrackingConfig(f"sqlite:///{tmp_path}/afile/mlflow.db")
    with pytest.raises(ConfigError, match=r"^tracking\.uri=sqlite:///.*/afile/mlflow\.db: "):
        check_train_job(valid_job(tracking))


def test_a_new_nested_store_folder_is_accepted_and_not_created(tmp_path):
    check_store(f"sqlite:///{tmp_path}/a/b/c/mlflow.db")
    check_store("sqlite:///mlflow.db")  # relative to the working directory
    check_store("http://127.0.0.1:5000")  # a server is not checked here
    assert list(tmp_path.iterdir()) == []


def continuing(continued: Continued, member: bool) -> Continued | WeeklyMember:
    """`continued` as a job's kind: itself, or a weekly refiner continuing it."""
    return WeeklyMember(WeeklySpec(), "refiner-0", "refiner 0: version 1", continued) if member else continued


@pytest.mark.parametrize("member", [False, True], ids=["continued", "weekly_refiner"])
@pytest.mark.parametrize("multiplier", [0.0, -1.0, math.nan, math.inf])
def test_a_learning_rate_multiplier_that_is_not_a_finite_positive_number_is_refused(job, multiplier, member):
    """0 would train at learning rate 0 and register a copy of the parent; -1 and nan fail late."""
    kind = continuing(Continued("models:/rlpipe-policy/1", multiplier), member)
    with pytest.raises(ConfigError) as e:
        check_train_job(replace(job, kind=kind))
    assert str(e.value).startswith(f"lr_multiplier={multiplier}: a continued model trains at")
    assert str(e.value).endswith("must be a finite number > 0 (0 would train nothing and register a copy "
                                 "of its parent); pass e.g. lr_multiplier=0.5")  # fmt: skip


@pytest.mark.parametrize("member", [False, True], ids=["continued", "weekly_refiner"])
def test_a_continued_models_training_data_is_checked(job, member):
    kind = continuing(Continued("models:/rlpipe-policy/1", continuation=ContinuationSpec("newest")), member)
    assert refusal(check_train_job, replace(job, kind=kind)) == (
        "continuation.data='newest': expected one of ('mix', 'latest', 'all')"
    )
    check_train_job(replace(job, kind=continuing(Continued("models:/rlpipe-policy/1", 0.3), member)))


def test_lengths_past_timesteps_are_refused_naming_the_key(job):
    assert refusal(check_train_job, replace(job, lengths=(256, 1024))) == (
        "lengths=[256, 1024]: [1024] not in (0, timesteps=512]; the run trains to timesteps, so pass "
        "timesteps=1024 or drop them"
    )
    check_train_job(replace(job, lengths=(256, 512)))


def test_a_data_file_that_is_not_there_is_refused_before_a_run_is_opened(job, tmp_path):
    here = tmp_path / "bars.csv"
    here.write_text("timestamp,open,high,low,close\n")
    data = DataSpec(source="csv", path=[str(here), str(tmp_path / "2021.csv")])
    with pytest.raises(DataError) as err:
        check_train_job(replace(job, data=data))
    assert str(err.value) == (
        f"data.path={tmp_path}/2021.csv: no such file (resolved to {tmp_path}/2021.csv); pass the path of an "
        "existing file (relative paths are read from the directory the command runs in)"
    )
    assert not (tmp_path / "mlruns").exists()  # nothing opened
    check_train_job(replace(job, data=DataSpec(source="csv", path=str(here))))  # contents are read later
