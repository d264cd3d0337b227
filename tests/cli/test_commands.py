"""What the commands do with a composed config, in process (the CLI's exit codes are in cli/test_errors)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.commands import _promote, parallel_jobs
from rlpipe.errors import ConfigError
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF


def test_promoting_an_unknown_sweep_is_refused_before_anything_is_written(tracking_uri):
    Tracker(tracking_uri, "rlpipe").experiment_id()  # an existing store, without that sweep
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("promote", overrides=["sweep_id=no-such-sweep", f"tracking.uri={tracking_uri}"])
    with pytest.raises(ConfigError, match=r"sweep_id=no-such-sweep: no job runs in experiment 'rlpipe'"):
        _promote(cfg)
    client = MlflowClient(tracking_uri)
    assert client.search_runs([client.get_experiment_by_name("rlpipe").experiment_id]) == []  # no parent run


def test_parallel_jobs_come_from_the_launcher(monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.setattr("rlpipe.agents.setup.usable_cores", lambda: 8)
    assert parallel_jobs(OmegaConf.create({"_target_": "hydra._internal.BasicLauncher"})) == 1
    assert parallel_jobs(OmegaConf.create({"n_jobs": 3})) == 3
    assert parallel_jobs(OmegaConf.create({"n_jobs": -1})) == 8  # joblib's "every core"
