"""Evaluation: batched backtest over slices, metrics, report and plots. No hydra, no mlflow."""
