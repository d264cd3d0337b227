"""The multirun callback's record of what a sweep varies (its jobs' run names lead with it)."""

from __future__ import annotations

from omegaconf import OmegaConf

from rlpipe.cli.sweep_callback import swept_keys


def config(task: list[str], params: dict | None = None):
    return OmegaConf.create({"hydra": {"overrides": {"task": task}, "sweeper": {"params": params}}})


def test_the_command_lines_sweeps_come_first_then_the_presets_in_order_each_once():
    task = [
        "experiment=smoke",
        "seed=1,2,3",
        "timesteps=5000",
        "reward=pnl,shaped",
        "agent.gamma=range(0.9,1,0.05)",
    ]
    params = {"agent.learning_rate": "interval(0.0001, 0.001)", "seed": "1,6,11"}
    assert swept_keys(config(task, params)) == ["seed", "reward", "agent.gamma", "agent.learning_rate"]


def test_fixed_overrides_and_no_sweeper_params_sweep_nothing():
    assert swept_keys(config(["seed=7", "timesteps=20000", "+data.columns.PX=close"])) == []
