"""`python -m rlpipe.routine experiment=routine_smoke` as a user runs it: three steps, each its own
sweep on the data cut at its as-of date, the weeks in the ledger and on the routine's parent run."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.jobs.routine_config import RoutineSpec
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker
from tests.support.project import cli


@pytest.mark.slow  # ~2.5 min: three smoke sweeps through the CLI (`make test-reliability`)
def test_the_smoke_routine_runs_three_steps_each_on_data_up_to_its_date(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli(
        "rlpipe.routine", "experiment=routine_smoke", f"tracking.uri={uri}", f"routine.dir={tmp_path}/routine"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ledger = json.loads((tmp_path / "routine" / "routine.json").read_text())
    assert [w["step"] for w in ledger["weeks"]] == [0, 1, 2]
    dates = RoutineSpec(first="2022-06-30 23:00", every="7D", steps=3).dates()
    client = MlflowClient(uri)
    for run in Tracker(uri, "rlpipe").search(f"tags.`{T.KIND}` = 'job'"):
        step = int(run.data.tags[T.SWEEP_ID].split("-")[1])  # step-<k>-<hash>
        assert pd.Timestamp(run.data.params["data.end"]) == dates[step]  # nothing after t_k was used
    (parent,) = Tracker(uri, "rlpipe").search(f"tags.`{T.KIND}` = 'routine'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["routine/weeks"] == 3.0
    assert client.list_artifacts(parent.info.run_id, "report")
