"""Shared fixtures: compose the real config with the smoke preset and a temporary store."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rlpipe.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("RLPIPE_ROOT", str(ROOT))
register_configs()


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/mlruns/mlflow.db"


@pytest.fixture
def compose_cfg(tracking_uri: str) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with the smoke preset, a temporary store, and extra overrides."""

    def _compose(*overrides: str, smoke: bool = True) -> DictConfig:
        base = ["experiment=smoke"] if smoke else []
        with initialize_config_dir(str(CONF), version_base="1.3"):
            return compose("train", overrides=[*base, f"tracking.uri={tracking_uri}", *overrides])

    return _compose
