"""Market data: sources, validation, past-only features and slices. No hydra, no mlflow."""
