"""Typed, Hydra-free jobs: a notebook builds one of these dataclasses and runs it.

- `train_job`: one training job (data -> learn -> assess -> record -> register);
- `evaluate_job`: re-evaluate a logged or registered policy on other slices or data;
- `sweep_job`: the sweep-level step (judge the configurations, move the registry, report);
- `prepare`: data -> slices -> features -> market, shared by all of them and the benchmarks.
"""
