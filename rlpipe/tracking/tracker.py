"""A tracker bound to one store: runs, params, metrics and artifacts, never MLflow's global state.

`Tracker(uri, experiment)` talks to that URI's store through the client the process bound for it
(`rlpipe.tracking.store.bind`: tracking and registry, retrying, the store checked once per process),
so two trackers in one process can talk to two stores, a tracker is cheap to make wherever a job
needs one, and a job behaves the same under any launcher.
A job run is opened with `tracker.run(...)`, a context manager that yields a `RunLog` (the
run's write handle); a crash marks the run FAILED with its traceback as an artifact.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

from rlpipe.errors import CheckpointError, StoreUnavailable, Terminated, mark_run
from rlpipe.tracking import tags as T
from rlpipe.tracking.config import TrackingConfig
from rlpipe.tracking.experiment import find_or_create
from rlpipe.tracking.process import process_token, ray_node_id
from rlpipe.tracking.store import DEFAULT_RETRY_S, DEFAULT_TIMEOUT_S, bind, one_try

log = logging.getLogger(__name__)
Point = tuple[str, float, int] | tuple[str, float, int, int]
MAX_PARAM_LEN = 6000
"""MLflow's limit on a param value's length; longer values are cut."""

_PARAM_NAME = re.compile(r"[/\w.\- :]+")  # what MLflow accepts in a param's name


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {"a.b.c": value}; lists, and mappings with keys MLflow can't name, as JSON."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and all(_PARAM_NAME.fullmatch(str(name)) for name in v):
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v, ensure_ascii=False) if isinstance(v, list | tuple | Mapping) else v
    return out


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local sqlite store live beside the database, in `artifacts/`."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "artifacts").resolve().as_uri()
    return None


@dataclass(frozen=True)
class LoggedModelRef:
    """A model logged from a run: its id and where its files are stored."""

    model_id: str
    artifact_location: str

    @property
    def uri(self) -> str:
        return f"models:/{self.model_id}"


@dataclass(frozen=True)
class RunLog:
    """The write handle of one run: everything is logged to `run_id` through `client`."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    tags: Mapping[str, str] = field(default_factory=dict)
    """The tags the run was opened with (its identity: sweep, configuration, seed...)."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log flattened params in batches (values cut to MLflow's length limit)."""
        items = [Param(k, str(v)[:MAX_PARAM_LEN]) for k, v in flatten(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log a flat dict of metrics at one step."""
        self.log_metric_series([(k, float(v), step) for k, v in metrics.items()])

    def log_metric_series(self, points: Sequence[Point]) -> None:
        """Log (key, value, step[, timestamp in ms]) points in batches of 1000."""
        ms = [Metric(p[0], p[1], p[3] if len(p) > 3 else 0, p[2]) for p in points]
        for i in range(0, len(ms), 1000):
            self.client.log_batch(self.run_id, metrics=ms[i : i + 1000])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_dict(self, data: Mapping[str, Any], path: str) -> None:
        self.client.log_dict(self.run_id, dict(data), path)

    def log_table(self, frame: pd.DataFrame, path: str) -> None:
        """Log a DataFrame as a Parquet artifact at `path` (e.g. curves/equity.parquet)."""
        with tempfile.TemporaryDirectory(prefix="rlpipe-") as tmp:
            file = Path(tmp) / Path(path).name
            frame.to_parquet(file, index=False)
            self.client.log_artifact(self.run_id, str(file), str(Path(path).parent))

    def log_files(self, paths: list[Path], artifact_dir: str) -> None:
        for p in paths:
            self.client.log_artifact(self.run_id, str(p), artifact_dir)

    def heartbeat(self, every_s: float = 60.0) -> Callable[[], None]:
        """A function that writes this run's heartbeat tag, at most every `every_s` seconds."""
        last = [time.monotonic()]

        def beat() -> None:
            if time.monotonic() - last[0] >= every_s:
                last[0] = time.monotonic()
                self.set_tags({T.HEARTBEAT: str(int(time.time()))})

        return beat

    def log_model_dir(self, local_dir: Path, name: str) -> LoggedModelRef:
        """Log a saved MLflow model folder as a logged model of this run."""
        model = self.client.create_logged_model(self.experiment_id, name=name, source_run_id=self.run_id)
        self.client.log_model_artifacts(model.model_id, str(local_dir))
        self.client.finalize_logged_model(model.model_id, "READY")
        return LoggedModelRef(model.model_id, model.artifact_location)


class Tracker:
    """Runs of one experiment in one store (tracking URI), with that store's model registry."""

    def __init__(
        self, uri: str, experiment: str, retry_s: float = DEFAULT_RETRY_S, timeout_s: int = DEFAULT_TIMEOUT_S
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self.client = bind(uri, retry_s, timeout_s)
        self._experiment_id: str | None = None
        self._found_id: str | None = None  # by `find_experiment_id`, which tags nothing
        self._parent_ids: dict[str, str] = {}  # sweep id -> its parent run's id (`parent_run`)

    @classmethod
    def of(cls, tracking: TrackingConfig) -> Tracker:
        """The tracker of a `tracking` config group (its store's client bound once per process)."""
        return cls(tracking.uri, tracking.experiment, tracking.retry_s, tracking.timeout_s)

    def experiment_id(self) -> str:
        """The experiment's id, creating the experiment once (`rlpipe.tracking.experiment`)."""
        if self._experiment_id is None:
            self._experiment_id = find_or_create(self.client, self.experiment, artifact_root(self.uri))
        return self._experiment_id

    def find_experiment_id(self) -> str | None:
        """The experiment's id, or None when it does not exist (creates nothing). Once found, it is
        this tracker's: every search of a job looked the experiment up again."""
        if self._experiment_id is None and self._found_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            self._found_id = str(exp.experiment_id) if exp is not None else None
        return self._experiment_id or self._found_id

    @contextmanager
    def run(
        self, name: str, tags: Mapping[str, str], resume_id: str | None = None, end: bool = True
    ) -> Iterator[RunLog]:
        """Open a run (or reopen `resume_id`, a run of this experiment that did not finish); on an
        exception mark it FAILED, log the traceback as an artifact, re-raise; `end=False` leaves it
        RUNNING when the block ends normally (a training that goes on in a later process).

        Ctrl-C (KeyboardInterrupt) and SIGTERM (`Terminated`, when the command turned it into an
        exception) mark it KILLED instead. The run records its process and a first heartbeat for
        the reaper (`rlpipe.tracking.reaper`), and inside a Ray task its node (`T.RAY_NODE`).
        """
        exp_id = self.experiment_id()
        alive = {T.PROCESS: process_token(), T.HEARTBEAT: str(int(time.time()))}
        node = ray_node_id()
        if node is not None:
            alive[T.RAY_NODE] = node
        if resume_id is None:
            created = self.client.create_run(exp_id, run_name=name, tags=resolve_tags({**tags, **alive}))
            run = RunLog(self.client, created.info.run_id, exp_id, dict(tags))
        else:
            run = self._reopen(resume_id, exp_id, {**tags, **alive})
        try:
            yield run
        except BaseException as exc:
            mark_run(exc, run.run_id)
            self._close_on_error(run, exc)
            raise
        else:
            if end:
                self.client.set_terminated(run.run_id, "FINISHED")

    def _close_on_error(self, run: RunLog, exc: BaseException) -> None:
        """Mark `run` FAILED (KILLED for Ctrl-C or SIGTERM) with the traceback as an artifact.

        After the store itself went away each call is tried once, not retried for another
        `tracking.retry_s`; whatever cannot be written is logged and left to the reaper, and never
        hides `exc`, the error the user must read.
        """
        killed = isinstance(exc, KeyboardInterrupt | Terminated)
        ctrl_c = isinstance(exc, KeyboardInterrupt)
        what = "killed by Ctrl-C" if ctrl_c else f"{type(exc).__name__}: {exc}"[:5000]
        with one_try(self.client) if isinstance(exc, StoreUnavailable) else nullcontext():
            try:
                run.log_text("".join(traceback.format_exception(exc)), "error/traceback.txt")
                run.set_tags({T.ERROR: what})
            except Exception as note:
                log.warning("run %s: the error could not be recorded (%s)", run.run_id, str(note)[:300])
            try:
                self.client.set_terminated(run.run_id, "KILLED" if killed else "FAILED")
            except Exception as close:
                reap = "`python -m rlpipe.runs reap` marks it KILLED"
                log.warning("run %s stays RUNNING: the store refused to close it (%s); %s",
                            run.run_id, str(close)[:300], reap)  # fmt: skip

    def _reopen(self, run_id: str, exp_id: str, tags: Mapping[str, str]) -> RunLog:
        try:
            found = self.client.get_run(run_id)
        except MlflowException as exc:
            raise CheckpointError(
                f"the checkpoint names run {run_id}, which is not in {self.uri}; run with resume=false"
            ) from exc
        if found.info.experiment_id != exp_id or found.info.status == "FINISHED":
            raise CheckpointError(
                f"the checkpoint names run {run_id} ({found.info.status}, experiment "
                f"{found.info.experiment_id}), which cannot be resumed here; run with resume=false"
            )
        self.reopen(run_id)
        run = RunLog(self.client, run_id, exp_id, dict(tags))
        run.set_tags(tags)
        return run

    def reopen(self, run_id: str) -> None:
        """Set an ended run RUNNING again, without the error note of how it ended."""
        found = self.client.get_run(run_id)
        if found.info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        if T.ERROR in found.data.tags:
            self.client.delete_tag(run_id, T.ERROR)

    def search(
        self, filter_string: str, order_by: list[str] | None = None, max_results: int = 10000
    ) -> list[Run]:
        """Runs of the experiment matching `filter_string`; [] when the experiment does not exist."""
        exp_id = self.find_experiment_id()
        if exp_id is None:
            return []
        return list(
            self.client.search_runs(
                [exp_id], filter_string=filter_string, order_by=order_by, max_results=max_results
            )
        )

    def parent(self, sweep_id: str) -> Run | None:
        """The parent run of a sweep, if one was created."""
        found = self.search(
            f"tags.`{T.SWEEP_ID}` = '{sweep_id}' and tags.`{T.KIND}` = '{T.SWEEP}'", max_results=1
        )
        if found:
            self._parent_ids[sweep_id] = found[0].info.run_id
        return found[0] if found else None

    def parent_run(self, sweep_id: str) -> str | None:
        """The id of a sweep's parent run, if one was created (once found, this tracker's: a job
        looked it up for its run name and again for its tags)."""
        if sweep_id not in self._parent_ids:
            self.parent(sweep_id)
        return self._parent_ids.get(sweep_id)

    def ensure_parent_run(self, sweep_id: str) -> str:
        """The sweep's parent run, created (RUNNING) if it does not exist yet."""
        existing = self.parent_run(sweep_id)
        if existing:
            return existing
        tags = resolve_tags({T.SWEEP_ID: sweep_id, T.KIND: T.SWEEP, T.PROCESS: process_token()})
        run = self.client.create_run(self.experiment_id(), run_name=f"sweep-{sweep_id}", tags=tags)
        return str(run.info.run_id)

    def handle(self, run_id: str) -> RunLog:
        """The write handle of an existing run (for example a sweep's parent run)."""
        return RunLog(self.client, run_id, self.experiment_id())

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run: FINISHED, or FAILED / KILLED."""
        self.client.set_terminated(run_id, status)
