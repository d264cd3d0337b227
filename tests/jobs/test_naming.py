"""Run names: the seed, then what the sweep varies, then the rest of the configuration's label."""

from __future__ import annotations

import dataclasses

from rlpipe.jobs.naming import run_name, varied_values

LABEL = {"agent": "ppo", "env": "management", "reward": "pnl_fees", "timesteps": "t300000"}


def test_a_seed_sweep_names_its_runs_by_seed_first():
    assert run_name(6, "", LABEL, ()) == "s6-ppo-management-pnl_fees-t300000"


def test_swept_label_parts_move_to_the_front_in_the_sweeps_order():
    varied = varied_values(["experiment=smoke", "timesteps=5000", "seed=1", "reward=shaped"],
                           ["seed", "reward", "timesteps"])  # fmt: skip
    assert varied == (("reward", "shaped"), ("timesteps", "5000"))
    label = {**LABEL, "reward": "shaped", "timesteps": "t5000"}
    assert run_name(1, "", label, varied) == "s1-shaped-t5000-ppo-management"


def test_optuna_trials_differ_by_their_sampled_values_right_after_the_seed():
    """Three trials of seed 1 were all `...-t20000-s1`; now what Optuna sampled leads, shortened."""
    swept = ["agent.learning_rate", "agent.ent_coef", "agent.gamma"]
    trials = [
        ["agent.learning_rate=0.00031234567", "agent.ent_coef=0.012345678", "agent.gamma=0.99"],
        ["agent.learning_rate=0.00071234567", "agent.ent_coef=0.0", "agent.gamma=0.95"],
    ]
    names = [run_name(1, "", LABEL, varied_values(t, swept)) for t in trials]
    assert names == [
        "s1-lr=0.000312-ec=0.0123-gamma=0.99-ppo-management-pnl_fees-t300000",
        "s1-lr=0.000712-ec=0.0-gamma=0.95-ppo-management-pnl_fees-t300000",
    ]


def test_group_choices_show_their_value_and_clashing_initials_their_word():
    varied = varied_values(
        ["+slices=walk_forward", "env.maker_fee=0.0001", "data.min_frac=2", "data.path=bars/EURUSD.csv"],
        ["slices", "env.maker_fee", "data.min_frac", "data.path"],
    )
    assert run_name(2, "explorer-3", LABEL, varied) == (
        "s2-explorer-3-walk_forward-maker_fee=0.0001-min_frac=2-path=EURUSD.csv-ppo-management-pnl_fees-t300000"
    )


def test_the_seed_and_sweeper_bookkeeping_are_not_repeated():
    varied = varied_values(["seed=3", "weekly.job=4", "pbt.round=2", "hydra.job.num=1"],
                           ["seed", "weekly.job", "pbt.round", "hydra.job.num"])  # fmt: skip
    assert varied == ()


def test_a_train_job_leads_its_name_with_its_varied_values(smoke_job):
    job = dataclasses.replace(smoke_job("seed=4", "reward=pnl"), varied=(("reward", "pnl"),))
    assert job.label == "ppo-management-pnl-t512"  # the configuration's label does not change
    assert job.run_name == "s4-pnl-ppo-management-t512"
