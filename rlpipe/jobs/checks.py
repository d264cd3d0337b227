"""Checks of a job's values that must fail before anything is recorded or trained.

Each check raises `ConfigError` (`SliceError` for declared windows, parsed and checked for leakage
by `rlpipe.data.slices.declared_slices`) naming the config key, what is wrong and what to do. The name
rules repeat MLflow's own (`mlflow.utils.validation`), so a bad slice name or model name is
refused at start-up instead of after training, when MLflow refuses the metric or the model.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rlpipe.data.data_config import DataSpec, SliceSpec
from rlpipe.errors import ConfigError, DataError
from rlpipe.jobs.job_config import Continued, TrainJob
from rlpipe.tracking import metric_keys as K
from rlpipe.tracking.config import TrackingConfig
from rlpipe.types import BASELINES

SEED_MAX = 2**32 - 1
"""Largest seed numpy's legacy seeding (`np.random.seed`, used by SB3) accepts."""
METRIC_KEY_MAX = 250
"""MLflow's longest metric key (`MAX_ENTITY_KEY_LENGTH` in mlflow.utils.validation)."""
EXPERIMENT_NAME_MAX = 500
"""MLflow's longest experiment name (`MAX_EXPERIMENT_NAME_LENGTH`)."""
SLICE_NAME_MAX = METRIC_KEY_MAX - len(K.baseline_total("", max(BASELINES, key=len)))
"""The longest slice name whose longest metric key (`slice/<slice>/baseline_buy_and_hold_total`)
stays within MLflow's limit."""
SLICE_NAME = re.compile(r"[\w.\- ]+")
"""MLflow's metric-key characters (`^[/\\w.\\- :]*$`) less '/' (it separates prefix, slice and metric)
and ':' (refused by MLflow on Windows, and the slice name is also a plot file name)."""


def check_train_job(job: TrainJob) -> None:
    """Refuse a training job that would fail late or record nonsense (an untrained policy, a bad name)."""
    if job.timesteps < 1:
        raise ConfigError(
            f"timesteps={job.timesteps}: the number of training steps must be at least 1 "
            "(the smoke preset uses 512); pass e.g. timesteps=20000"
        )
    if not 0 <= job.seed <= SEED_MAX:
        raise ConfigError(
            f"seed={job.seed}: a seed must be an integer in [0, {SEED_MAX}] (numpy and torch "
            "refuse others); pass e.g. seed=7"
        )
    if job.threads is not None and job.threads < 1:
        raise ConfigError(
            f"threads={job.threads}: a job needs at least one thread; pass threads=null to take "
            "the usable cores divided by the launcher's parallel jobs"
        )
    if job.kind.continued:
        check_continued(job.kind.continued)
    check_lengths(job)
    check_slice_names(job.slices)
    check_data_files(job.data)
    check_tracking(job.tracking)
    # Last, the checks that import what they need: pandas (the windows' dates), then the agent's
    # SB3 class (and torch), so that a bad value above is refused without them, in about a second.
    from rlpipe.data.slices import declared_slices

    declared_slices(job.slices)  # declared windows leaking training into validation or test: no data needed
    job.agent.check()


def check_data_files(data: DataSpec) -> None:
    """Refuse a data file that is not there before a run is opened for it (synthetic data has none)."""
    if data.source not in ("csv", "parquet"):
        return
    for path in data.paths():
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"data.path={path}: no such file (resolved to {file.resolve()}); pass the path "
                            "of an existing file (relative paths are read from the directory the command "
                            "runs in)")  # fmt: skip


def check_continued(continued: Continued) -> None:
    """Refuse a continued model's learning-rate multiplier or training data that cannot train."""
    if not (math.isfinite(continued.lr_multiplier) and continued.lr_multiplier > 0):
        raise ConfigError(
            f"lr_multiplier={continued.lr_multiplier}: a continued model trains at the agent's learning rate "
            "x lr_multiplier, which must be a finite number > 0 (0 would train nothing and register a copy "
            "of its parent); pass e.g. lr_multiplier=0.5"
        )
    continued.continuation.check()


def check_lengths(job: TrainJob) -> None:
    """Refuse training lengths the run cannot reach, and a tolerance that is not a fraction."""
    bad = [n for n in job.lengths if not 0 < n <= job.timesteps]
    if bad:
        raise ConfigError(
            f"lengths={list(job.lengths)}: {bad} not in (0, timesteps={job.timesteps}]; the run "
            f"trains to timesteps, so pass timesteps={max(max(job.lengths), job.timesteps)} or drop them"
        )
    if job.checkpoint.every < 0:
        raise ConfigError(f"checkpoint.every={job.checkpoint.every}: must be >= 0 (0: only at the lengths)")
    if not 0 <= job.gates.checkpoint_tolerance < 1:
        raise ConfigError(
            f"gates.checkpoint_tolerance={job.gates.checkpoint_tolerance}: a fraction in [0, 1) of the best "
            "validation score, e.g. 0.05"
        )


def check_slice_names(spec: SliceSpec) -> None:
    """Refuse declared window names that MLflow would refuse inside `slice/<slice>/<metric>` keys."""
    if spec.kind != "declared":  # walk-forward names are generated (train, validation, fold1, ...)
        return
    for i, name in enumerate(_names(spec.windows)):
        ok = bool(SLICE_NAME.fullmatch(name)) and name not in (".", "..") and len(name) <= SLICE_NAME_MAX
        if not ok:
            raise ConfigError(
                f"slices.windows[{i}].name={name!r}: slice names become MLflow metric keys "
                "slice/<slice>/<metric>; use 1 to "
                f"{SLICE_NAME_MAX} letters, digits, '_', '-', '.' or spaces (no '/' or ':'), not '.' or '..'"
            )


def check_tracking(tracking: TrackingConfig) -> None:
    """Refuse experiment and registered-model names MLflow would refuse, and an unwritable local store."""
    name = tracking.experiment
    if not name.strip() or len(name) > EXPERIMENT_NAME_MAX:
        raise ConfigError(
            f"tracking.experiment={name!r}: MLflow needs a non-empty experiment name of at most "
            f"{EXPERIMENT_NAME_MAX} characters; pass e.g. tracking.experiment=rlpipe"
        )
    model = tracking.registered_model
    # mlflow.utils.validation._validate_model_name: not blank, no '/' or ':', and a path that
    # normalises to itself (so not '.' and nothing starting with '..').
    if not model.strip() or any(c in model for c in "/:") or model == "." or model.startswith(".."):
        raise ConfigError(
            f"tracking.registered_model={model!r}: MLflow refuses model names that are blank, "
            "contain '/' or ':', or are '.' or start with '..'; pass e.g. "
            "tracking.registered_model=rlpipe-policy"
        )
    check_store(tracking.uri)


def check_store(uri: str) -> None:
    """Refuse a local sqlite store (`sqlite:///<path>`) whose folder cannot be created or written.

    Creates nothing: it looks at the nearest folder of the path that exists. Server URIs are not
    checked here.
    """
    if not uri.startswith("sqlite:///"):
        return
    db = Path(uri.removeprefix("sqlite:///"))
    nearest = next(p for p in (db.parent, *db.parent.parents) if p.exists() or p == p.parent)
    problem = None
    if not nearest.is_dir():
        problem = f"{nearest} is a file, not a folder"
    elif not os.access(nearest, os.W_OK | os.X_OK):
        problem = f"folder {nearest} is not writable"
    elif db.exists() and not os.access(db, os.W_OK):
        problem = f"{db} is read-only"
    if problem:
        raise ConfigError(
            f"tracking.uri={uri}: {problem}, so the local store cannot be created or written there; "
            "pass a writable place, e.g. tracking.uri=sqlite:///<your folder>/mlflow.db"
        )


def _names(windows: Iterable[Any]) -> list[str]:
    """Window names, from config dicts or `WindowSpec`s (a missing name is `parse_slices`' to report)."""
    return [str(w.get("name", "x") if isinstance(w, dict) else w.name) for w in windows]
