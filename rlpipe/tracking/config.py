"""Tracking settings (config group `tracking`); plain values, no mlflow import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrackingConfig:
    """Where runs and models are recorded."""

    uri: str = "sqlite:///mlruns/mlflow.db"
    """Tracking URI: sqlite:///<path>/mlflow.db (local) or http(s)://host:port (server)."""
    experiment: str = "rlpipe"
    """MLflow experiment name."""
    registered_model: str = "rlpipe-policy"
    """Registered model that every evaluated run adds a version to."""
