"""Tracking settings (config group `tracking`); plain values, no mlflow import."""

from __future__ import annotations

from dataclasses import dataclass

from rlpipe.errors import ConfigError

ON_DEGRADED = ("flag", "rollback")


@dataclass
class TrackingConfig:
    """Where runs and models are recorded."""

    uri: str = "sqlite:///mlruns/mlflow.db"
    """Tracking URI: sqlite:///<path>/mlflow.db (local) or http(s)://host:port (server)."""
    experiment: str = "rlpipe"
    """MLflow experiment name."""
    registered_model: str = "rlpipe-policy"
    """Registered model that every evaluated run adds a version to."""
    retry_s: float = 30.0
    """Seconds a store call keeps retrying a transient error (a locked or read-only database, a
    server restarting or gone), with backoff 0.5, 1, 2, 4... s; then the command stops with one
    line naming the store (exit status 2). 0: one try."""
    timeout_s: int = 30
    """Seconds an HTTP request to a tracking server may take before it counts as failed (a server
    that accepts connections but never answers costs up to this per try)."""


@dataclass
class RegistryConfig:
    """What the sweep step may do with the versions of a job (config node `registry`)."""

    promote: bool = True
    """False: the job's versions are judged and tagged but never staged or crowned (smoke runs,
    experiments that must not reach Production)."""
    on_degraded: str = "flag"
    """What a `degraded` health verdict on the @champion does (`rlpipe.jobs.health_job`): flag
    records it on the version (and the paper run); rollback also restores the previous champion
    through `Registry.rollback`, with the verdict's reasons in the registry history."""

    def __post_init__(self) -> None:
        if self.on_degraded not in ON_DEGRADED:
            raise ConfigError(
                f"registry.on_degraded={self.on_degraded!r}: expected flag (record the verdict) or "
                "rollback (also restore the previous @champion)"
            )
