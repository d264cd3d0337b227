"""Tracking store set-up: local sqlite under mlruns/, or a tracking server."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

# MLflow's own chatter (alembic migrations, env inference) is noise for a user of rlpipe.
for _name in ("mlflow", "alembic", "urllib3", "git"):
    logging.getLogger(_name).setLevel(logging.WARNING)
logging.getLogger("mlflow.pyfunc").setLevel(logging.ERROR)  # the cloudpickle notice, on every log
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local sqlite store live beside the database, in `artifacts/`."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def ensure_experiment(uri: str, name: str) -> str:
    """Point MLflow at `uri` and return the id of experiment `name`, creating it once."""
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return str(exp.experiment_id)
    try:
        return str(client.create_experiment(name, artifact_location=artifact_root(uri)))
    except mlflow.exceptions.MlflowException:  # created meanwhile by a parallel job
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)
