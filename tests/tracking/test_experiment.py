"""The experiment: created once and tagged as model training, an older one tagged when next used."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking.experiment import KIND, MODEL_TRAINING
from rlpipe.tracking.tracker import Tracker


def test_a_new_experiment_is_tagged_model_training(tracking_uri):
    exp_id = Tracker(tracking_uri, "rlpipe").experiment_id()
    assert MlflowClient(tracking_uri).get_experiment(exp_id).tags[KIND] == MODEL_TRAINING


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, MODEL_TRAINING),  # created by an earlier rlpipe, or by hand
        ("genai_development_inferred", MODEL_TRAINING),  # only inferred: replaced
        ("no_inferred_type", MODEL_TRAINING),
        ("genai_development", "genai_development"),  # someone chose it: kept
    ],
)
def test_an_existing_experiment_is_tagged_when_a_tracker_writes_to_it(tracking_uri, before, after):
    client = MlflowClient(tracking_uri)
    exp_id = client.create_experiment("rlpipe", tags={KIND: before} if before else None)
    assert KIND not in client.get_experiment(exp_id).tags or before
    tracker = Tracker(tracking_uri, "rlpipe")
    assert tracker.find_experiment_id() == exp_id and client.get_experiment(exp_id).tags.get(KIND) == before
    assert tracker.experiment_id() == exp_id  # reading tags nothing, writing does
    assert client.get_experiment(exp_id).tags[KIND] == after
