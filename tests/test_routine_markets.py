"""The routine on two markets, through the CLI as a user runs it: the default routine's sweeps and
walk-forward slices (conf/routine/default.yaml) with a small training budget, three weekly steps.
With the planted signal the stitched forward equity beats flat after fees; on a martingale market
(no drift, no mean reversion, no signal) nothing is promoted, so every week is flat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlpipe.cli.compose import routine_job
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF, cli

STEPS = 3
BUDGET = "timesteps=100000"
"""Per job: enough for PPO to pick up the planted signal (the default routine trains 300k; 50k is not)."""
MARTINGALE = ("data.trend=0", "data.mean_reversion=0", "data.signal_strength=0")


def _replay(tmp_path: Path, *market: str) -> tuple[list[dict], dict[str, float], list]:
    """The default routine, STEPS steps of its sweeps at BUDGET; (weeks, parent metrics, job runs)."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        default = routine_job(compose("routine", overrides=["experiment=routine"])).routine
    sweep = ",".join(f"'{o}'" for o in [*default.sweep, BUDGET])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli("rlpipe.routine", "experiment=routine", f"routine.steps={STEPS}", f"routine.sweep=[{sweep}]",
               f"tracking.uri={uri}", f"routine.dir={tmp_path}/routine", *market)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    weeks = json.loads((tmp_path / "routine" / "routine.json").read_text())["weeks"]
    tracker = Tracker(uri, "rlpipe")
    (parent,) = tracker.search(f"tags.`{T.KIND}` = 'routine'")
    jobs = tracker.search(f"tags.`{T.KIND}` = 'job'")
    assert len(weeks) == STEPS and len(jobs) == 2 * STEPS  # every step's two seeds trained and were judged
    assert all(r.info.status == "FINISHED" for r in jobs)
    return weeks, parent.data.metrics, jobs


@pytest.mark.slow  # ~2.5 min: three 2-seed sweeps of 100k steps and their paper weeks
def test_on_the_planted_market_the_routine_beats_flat_after_fees(tmp_path):
    weeks, metrics, jobs = _replay(tmp_path)
    assert any(w["champion"] is not None for w in weeks)
    assert any(r.data.tags[T.SWEEP_VERDICT] == "promote" for r in jobs)
    assert metrics["routine/total"] > metrics["routine/flat_total"] == 0.0  # stitched weeks, after fees


@pytest.mark.slow  # ~2.5 min: the same routine on a martingale
def test_on_a_martingale_market_nothing_is_promoted_and_the_routine_stays_flat(tmp_path):
    weeks, metrics, jobs = _replay(tmp_path, *MARTINGALE)
    assert [w["champion"] for w in weeks] == [None] * STEPS
    assert not any(r.data.tags[T.SWEEP_VERDICT] == "promote" for r in jobs)
    assert metrics["routine/total"] == 0.0 and metrics["routine/weeks_with_champion"] == 0.0
    assert metrics["routine/buy_and_hold_total"] != 0.0  # the market moved; the routine did not trade it
