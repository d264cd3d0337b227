"""An as-of date (`data.end`) is a wall: a huge move planted just after it changes nothing that a job
decides (training, the validation scores that choose the length and rank it, the gates), which is
what lets each step of the replayed routine (`rlpipe.jobs.routine_job`) act at t_k."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rlpipe.data.sources import load_data
from rlpipe.jobs.train_job import run_train
from rlpipe.tracking import tags as T

ASOF = "2022-06-30 23:00"


@pytest.mark.slow  # two walk-forward smoke jobs, ~1 min on a quiet machine (`make test-reliability`)
def test_a_huge_move_planted_after_the_as_of_date_changes_nothing_the_job_decides(
    smoke_job, tracking_uri, tmp_path
):
    bars = load_data(smoke_job().data)  # the embedded market (conf/data/synthetic.yaml), as a user's file
    planted = bars.copy()
    after = planted.index > pd.Timestamp(ASOF, tz="UTC")
    planted.loc[after, ["open", "high", "low", "close"]] *= 3.0  # +200% on the first bar after t
    outcomes = []
    for name, frame in (("plain", bars), ("planted", planted)):
        path = tmp_path / f"{name}.csv"
        frame.rename_axis("timestamp").to_csv(path)
        job = smoke_job("data=csv", f"data.path={path}", f"data.end='{ASOF}'", "slices=walk_forward",
                        "lengths=[256]", f"tracking.experiment={name}")  # fmt: skip
        outcomes.append(MlflowClient(tracking_uri).get_run(run_train(job).run_id).data)
    plain, moved = outcomes
    roles = ("validation/", "test/", "train/", "slice/", "curve/")
    decided = [k for k in plain.metrics if k.startswith(roles)
               and not k.startswith("curve/time/")]  # fmt: skip  # SB3's wall clock differs, nothing else
    assert any(k.startswith("curve/validation/") for k in decided)  # the length was chosen here
    assert any(k.startswith("slice/") for k in decided)  # every slice's backtest, too
    same = {k: moved.metrics[k] for k in decided if not math.isnan(plain.metrics[k])}
    assert same == {k: plain.metrics[k] for k in same}
    assert [k for k in decided if math.isnan(plain.metrics[k]) != math.isnan(moved.metrics[k])] == []
    for tag in (T.DATA_DIGEST, T.VERDICT, T.SELECTED_TIMESTEPS):
        assert moved.tags[tag] == plain.tags[tag]
    assert pd.Timestamp(plain.params["data.end"]) == pd.Timestamp(ASOF)
