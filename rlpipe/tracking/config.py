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
    retries: int = 6
    """Tries after a transient store error (a locked or read-only database, a server restarting),
    with backoff 0.5, 1, 2, 4... s (6: about 30 s in all); also MLflow's HTTP retries per request."""
    timeout_s: int = 30
    """Seconds an HTTP request to a tracking server may take before it counts as failed."""


@dataclass
class RegistryConfig:
    """What the sweep step may do with the versions of a job (config node `registry`)."""

    promote: bool = True
    """False: the job's versions are judged and tagged but never staged or crowned (smoke runs,
    experiments that must not reach Production)."""
