"""The code MLflow runs to load a logged policy ("models from code"): no pickled model object.

Never imported by rlpipe: `rlpipe.tracking.policy.log_policy` passes this file's path to
`mlflow.pyfunc.save_model`, which copies it into the model; `mlflow.pyfunc.load_model` and
`mlflow models serve` execute that copy, and `PolicyModel.load_context` reads the artifacts.
"""

from mlflow.models import set_model

from rlpipe.tracking.policy_model import PolicyModel

set_model(PolicyModel())
