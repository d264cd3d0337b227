"""The experiment a tracker writes to: created once, and tagged as model training.

`mlflow.experimentKind` is MLflow's record of what an experiment holds (its UI's GenAI or model
training pages); rlpipe's experiments hold training runs. MLflow 3.17's UI also follows a per-browser
switch that the URLs of `rlpipe.tracking.ui` set (`workflowType=machine_learning`).
"""

from __future__ import annotations

from mlflow.entities import Experiment
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

KIND = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
"""The experiment kind of model training (MLflow's `ExperimentKind`)."""


def find_or_create(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of experiment `name`, created (tagged model training) if it does not exist; an
    existing one without a kind is tagged too."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return str(client.create_experiment(name, artifact_location, tags={KIND: MODEL_TRAINING}))
        except MlflowException:  # created meanwhile by a parallel job
            found = client.get_experiment_by_name(name)
            if found is None:
                raise
    tag_model_training(client, found)
    return str(found.experiment_id)


def tag_model_training(client: MlflowClient, experiment: Experiment) -> None:
    """Tag an experiment as model training unless someone chose its kind (none, or a kind the UI only
    inferred, is replaced)."""
    kind = experiment.tags.get(KIND, "")
    if not kind or (kind != MODEL_TRAINING and "inferred" in kind):
        client.set_experiment_tag(experiment.experiment_id, KIND, MODEL_TRAINING)
