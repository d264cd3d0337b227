"""The tracking store: runs, params, metrics, artifacts, the registry, the queries that read them back.

With `rlpipe.policy` (the policy's MLflow model) the only code that imports mlflow; MLflow's
telemetry is turned off in `rlpipe/__init__.py`, before either is imported.
"""
