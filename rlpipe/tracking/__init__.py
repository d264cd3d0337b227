"""The only package that imports mlflow: store, runs, artifacts, pyfunc policy, registry.

MLflow's usage telemetry (a config fetch and usage records sent to an external endpoint from
background threads) is off unless the user turns it on (`MLFLOW_DISABLE_TELEMETRY=false`): a
training job sends nothing anywhere but its own tracking store. Set before mlflow is imported.
"""

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
