"""rlpipe: train, evaluate, gate and register RL trading agents as repeatable experiments.

MLflow's usage telemetry (a config fetch and usage records sent to an external endpoint from
background threads) is off unless the user turns it on (`MLFLOW_DISABLE_TELEMETRY=false`): a
training job sends nothing anywhere but its own tracking store. MLflow reads it when it is imported,
and three packages of rlpipe reach MLflow (`tracking` and `policy` import it, `server` starts
`mlflow server`), so it is set here, before any of them.
"""

import os

__version__ = "0.1.0"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
