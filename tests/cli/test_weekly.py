"""`experiment=weekly`: explorers, refiners and the champion continuation in one sweep, judged together,
with generations and champion longevity on the sweep's parent run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

from rlpipe.cli.sweep_callback import SweepCallback
from rlpipe.jobs.train_job import run_train
from rlpipe.jobs.weekly_plan import WeeklySpec, grid, ranked_versions
from rlpipe.tracking import queries
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF, cli

SMALL = ["progress_bar=false", "plots=false", "env.episode_bars=128", "env.episode_bars_std=0.0"]


def test_a_tiny_week_has_explorers_refiners_and_the_champion_continuation_in_one_sweep(
    tmp_path, tracking_uri, smoke_job
):
    # last week: two registered models, the first crowned by hand
    for seed in (1, 2):
        run_train(smoke_job(f"seed={seed}", "registry.promote=true"))
    client = MlflowClient(tracking_uri)
    client.set_registered_model_alias("rlpipe-policy", "champion", "1")
    refinable = ranked_versions(Registry(client, "rlpipe-policy"), "sharpe_mean", None)
    week = ["weekly.budget=10240", "weekly.explorers=1", "weekly.refiners=1", "weekly.seeds=[3]",
            "weekly.checkpoint_fractions=[0.5]"]  # fmt: skip
    proc = cli(
        "rlpipe.train", "-m", "experiment=weekly", *week, *SMALL, f"tracking.uri={tracking_uri}",
        f"checkpoint.dir={tmp_path}/checkpoints", f"hydra.sweep.dir={tmp_path}/multirun",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    tracker = Tracker(tracking_uri, "rlpipe")
    sweep = queries.latest_sweep_id(tracker)
    runs = {r.data.tags["rlpipe.weekly_role"]: r for r in queries.job_runs(tracker, sweep)}
    assert sorted(runs) == ["champion-0", "explorer-0", "refiner-0"]
    explorer, refiner, champion = runs["explorer-0"], runs["refiner-0"], runs["champion-0"]
    assert [r.data.params["timesteps"] for r in (explorer, refiner, champion)] == ["6144", "3072", "1024"]
    search = yaml.safe_load((CONF / "experiment" / "weekly.yaml").read_text())["weekly"]["search"]
    first = grid(WeeklySpec(search=search))[0]
    assert float(explorer.data.params["agent.learning_rate"]) == first["agent.learning_rate"]
    assert "rlpipe.init_from" not in explorer.data.tags or explorer.data.tags["rlpipe.generation"] == "0"
    if refinable:  # the best version by validation that is neither the champion nor rejected
        assert refiner.data.tags["rlpipe.init_from"] == f"models:/rlpipe-policy/{refinable[0][0]}"
        assert refiner.data.params["lr_multiplier"] == "0.5"
    assert champion.data.tags["rlpipe.init_from"] == "models:/rlpipe-policy/1"
    assert champion.data.params["lr_multiplier"] == "0.3" and champion.data.tags["rlpipe.generation"] == "1"
    parent = client.get_run(tracker.parent_run(sweep))
    assert parent.data.metrics["lineage/continued_runs"] == 1 + bool(refinable)
    assert parent.data.metrics["champion/sweeps_held"] >= 1
    report = queries.sweep_report(tracker, sweep)
    assert report["generations"]["lineage/continued_runs"] == 1 + bool(refinable)
    assert len(report["configurations"]) == 3  # judged together
    # the explorers are one hypothesis (their pick by validation), each continuation another
    assert report["n_trials"] == 1 + 1 + bool(refinable)
    verdicts = {r.data.tags["rlpipe.weekly_role"]: r.data.tags["rlpipe.sweep_verdict"] for r in runs.values()}
    assert (verdicts["refiner-0"] == "unpicked") == (not refinable)  # an unrefined slot explores


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "weekly.seeds=[]",
            "error: weekly.seeds=[]: at least one seed, no repeats; pass e.g. weekly.seeds=[1,6]",
        ),
        (
            "weekly.budget=0",
            "error: weekly.budget=0: the explorer/refiner/champion members would train 0 steps "
            "(budget x split [0.6, 0.3, 0.1] / (members x seeds)); raise weekly.budget, e.g. "
            "weekly.budget=35500000",
        ),
    ],
)
def test_a_weekly_plan_that_cannot_run_stops_the_sweep_once_before_any_job(
    tmp_path, tracking_uri, capsys, override, line
):
    """Before: an empty sweep that exited 0, or one error per job after every job had started."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "experiment=weekly",
                override,
                f"tracking.uri={tracking_uri}",
                f"hydra.sweep.dir={tmp_path}/sweep",
            ],
            return_hydra_config=True,
        )
    with pytest.raises(SystemExit) as stop:
        SweepCallback().on_multirun_start(cfg)
    assert stop.value.code == 2 and capsys.readouterr().err == line + "\n"
    assert not Path(tracking_uri.removeprefix("sqlite:///")).exists()  # no store, no parent run
