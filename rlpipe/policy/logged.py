"""The policy of a job run logged: a pyfunc model over raw bars, with its integrity record.

`log_policy` stores the network as `weights.pt` + `architecture.json` (`rlpipe.policy.network`)
and the feature statistics, layout and scales as `meta.json`, in the model's `data/policy`, and
logs them as an MLflow model whose loader is the installed `rlpipe.policy.pyfunc`
(`loader_module`: the artifact holds no code and nothing pickled), with its input signature, an
input example and installable requirements; a sha256 manifest over the model's files is written
into it and its digest returned, to be recorded in the store. Reading it back is
`rlpipe.policy.resolved`.

Users with bars (see `rlpipe.policy.model` for the columns):

    model = mlflow.pyfunc.load_model("models:/rlpipe-policy@champion")
    model.predict(bars)  # -> action (0 hold, 1 long, 2 short, -1 warm-up), warmup
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema, TensorSpec
from packaging.version import Version
from stable_baselines3.common.base_class import BaseAlgorithm

from rlpipe.data.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from rlpipe.policy.manifest import write_manifest
from rlpipe.policy.model import DATA, META
from rlpipe.policy.network import save_policy_net
from rlpipe.policy.observations import POSITION_INPUTS, TIMESTAMP, ObservationSpec, warmup_bars
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import LoggedModelRef, RunLog
from rlpipe.types import JsonDict

ARTIFACT = "policy"
"""Name of the logged model of a job run (`runs:/<run id>/policy`)."""
LOADER = "rlpipe.policy.pyfunc"
"""The module MLflow loads a policy with (`_load_pyfunc`), from the installed rlpipe."""
REQUIREMENTS = ("rlpipe", "stable-baselines3", "torch", "gymnasium", "numpy", "pandas", "mlflow")
EXAMPLE_BARS = 8
"""Bars past the warm-up in the logged input example."""


@dataclass(frozen=True)
class LoggedPolicy:
    """A logged policy model and the sha256 of its manifest (to record on its run and version)."""

    model: LoggedModelRef
    sha256: str


def log_policy(run: RunLog, agent: BaseAlgorithm, meta: dict[str, Any], bars: pd.DataFrame) -> LoggedPolicy:
    """Save `agent`'s policy as a pyfunc model over raw bars and log it as the run's model `policy`.

    Args:
        run: the job's run.
        agent: the trained algorithm (PPO, A2C or DQN with its default policy).
        meta: feature_stats, env_kind, sim (the env config), bar_hours, and what re-evaluation
            needs (seed, data_digest, embargo, train_windows...).
        bars: market bars the input example is cut from (its first warm-up + 8 bars).
    """
    meta = {**meta, "warmup_bars": warmup_bars()}
    with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
        files = Path(tmp) / "files" / Path(DATA).name  # copied by MLflow into the model as DATA
        save_policy_net(agent, files)
        (files / META).write_text(json.dumps(meta, indent=2))
        folder = Path(tmp) / ARTIFACT
        with warnings.catch_warnings():  # MLflow's hints (type hints, requirements): known, by design
            warnings.simplefilter("ignore")
            mlflow.pyfunc.save_model(
                str(folder),
                loader_module=LOADER,
                data_path=str(files),
                signature=signature(meta),
                input_example=input_example(bars, meta["warmup_bars"] + EXAMPLE_BARS),
                pip_requirements=_requirements(),
            )
        digest = write_manifest(folder)
        model = run.log_model_dir(folder, ARTIFACT)
    run.client.set_logged_model_tags(model.model_id, {T.POLICY_SHA256: digest})
    return LoggedPolicy(model, digest)


def _requirements() -> list[str]:
    """The installed versions, pinned without their local label (torch 2.13.0+cpu -> torch==2.13.0,
    which any index holding 2.13.0 satisfies, the CPU or a CUDA build); rlpipe is not on PyPI: it is
    installed from the project before these (README, "Using a trained policy")."""
    from importlib.metadata import version

    return [f"{p}=={Version(version(p)).public}" for p in REQUIREMENTS]


def signature(meta: JsonDict) -> ModelSignature:
    """Input: timestamp, OHLCV, optional bid/ask and position columns; output: action, warmup."""
    layout = ObservationSpec.from_meta(meta).layout
    inputs: list[ColSpec | TensorSpec] = [ColSpec("string", TIMESTAMP, required=False)]
    inputs += [ColSpec("double", c) for c in REQUIRED_COLUMNS]
    inputs += [ColSpec("double", c, required=False) for c in (*OPTIONAL_COLUMNS, *POSITION_INPUTS[layout])]
    outputs: list[ColSpec | TensorSpec] = [ColSpec("long", "action"), ColSpec("boolean", "warmup")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def input_example(bars: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first `n` bars as a request body: a timestamp column (ISO text) and the bar columns."""
    head = bars.iloc[:n]
    cols = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in head.columns]
    stamps = pd.DatetimeIndex(head.index).strftime("%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame({TIMESTAMP: stamps, **{c: head[c].to_numpy(float) for c in cols}})
