"""A trained policy as it leaves training: its files, their integrity record, what it does to raw bars,
and the MLflow model that carries it.

Files that need no store (a paper session, the backtest, a test or a notebook reads a policy's
folder with them, and none of them imports mlflow):

- `network.py`: the network as `weights.pt` + `architecture.json`, rebuilt without unpickling.
- `manifest.py`: the one sha256 scheme of a policy: a manifest over every file of its folder, whose
  own sha256 the store records; checked before anything of the folder is read.
- `observations.py`: raw bars + a position in natural units -> the observation rows training saw.
- `model.py`: `PolicyModel`, a checked folder -> actions on raw bars.

Files that must import mlflow (the house check allows mlflow here as in `rlpipe.tracking`):

- `pyfunc.py`: the `loader_module` MLflow imports to load a logged policy; it asks the registry
  for the recorded sha256, so it talks to the store from inside MLflow's own loading.
- `logged.py`: `log_policy`, the model saved with MLflow's pyfunc flavour, its signature and
  input example, logged on the job's run.
- `resolved.py`: a model URI resolved through the store's client, fetched, checked, loaded.
- `serve.py`: `make serve` (`python -m rlpipe.policy.serve`): the checked copy served by
  `mlflow models serve`.

The split follows the one question a reader of a policy asks first, "does this need the store?":
the four files above the line are what a policy is and are read wherever a folder is at hand;
the four below are how it travels through MLflow. The store's own code (runs, registry, tags)
stays in `rlpipe.tracking`, which imports nothing from here but the loader path that policies
logged before this package existed record (`rlpipe.tracking.served_policy`).
"""
