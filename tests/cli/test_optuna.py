"""`experiment=optuna`: Optuna maximises each job's validation score, never a test result."""

from __future__ import annotations

import pytest
import yaml
from mlflow.tracking import MlflowClient

from rlpipe.tracking.tracker import Tracker
from tests.support.project import cli

SMALL = [  # the smoke preset's values (experiment is taken by optuna)
    "timesteps=512", "progress_bar=false", "env.episode_bars=128", "env.episode_bars_std=0.0",
    "registry.promote=false",
]  # fmt: skip


@pytest.mark.slow  # ~30 s; the default suite checks the returned value in jobs/test_train_job
def test_the_optuna_sweeper_optimises_the_validation_score(tmp_path, tracking_uri):
    proc = cli(
        "rlpipe.train", "-m", "experiment=optuna", *SMALL, "hydra.sweeper.n_trials=2",
        f"tracking.uri={tracking_uri}", f"hydra.sweep.dir={tmp_path}/multirun",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = yaml.safe_load((tmp_path / "multirun" / "optimization_results.yaml").read_text())
    runs = Tracker(tracking_uri, "rlpipe").search("tags.`rlpipe.kind` = 'job'")
    assert len(runs) == 2 and len({r.data.tags["rlpipe.config_hash"] for r in runs}) == 2
    validation = [r.data.metrics["validation/sharpe_mean"] for r in runs]
    assert result["best_value"] == max(validation)  # direction maximize, objective = validation score
    tests = {v for r in runs for k, v in r.data.metrics.items() if k.startswith("test/")}
    assert result["best_value"] not in tests
    best = max(runs, key=lambda r: r.data.metrics["validation/sharpe_mean"])
    params = MlflowClient(tracking_uri).get_run(best.info.run_id).data.params
    assert float(params["agent.learning_rate"]) == result["best_params"]["agent.learning_rate"]
    # the trials of one seed differ by what Optuna sampled, right after the seed in their names
    for r in runs:
        p = r.data.params
        lr, ec, gamma = (f"{float(p[f'agent.{k}']):.3g}" for k in ("learning_rate", "ent_coef", "gamma"))
        assert r.info.run_name == f"s1-lr={lr}-ec={ec}-gamma={gamma}-ppo-management-pnl_fees-t512"
