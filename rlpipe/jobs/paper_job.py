"""Paper trading: a registered (or logged) policy traded bar by bar on bars it has never seen, as one
MLflow run of kind `paper` linked to its model version.

Before anything runs: the model resolves and loads through its checked files, the bars are spaced
as the policy's training bars, and no traded bar lies inside any of the model's recorded training
or validation windows (its ancestors' training included) plus the embargo. The session then feeds
the bars one at a time (`rlpipe.forward.session`): from a finished file, or (`follow=true`) from a
file another process appends to, polled every `poll_s`. Every `save_every` bars, and when it
stops, the job logs the bars' points (equity, position, fills, fees, buy-and-hold, stepped by bar
and stamped with the bar's time), appends the decisions to its folder's `decisions.csv` and saves
the session's state there, atomically, last: a killed session resumes (`resume=true`) from the
bar after the last saved one, and acts on no bar twice. The folder is locked by its process, as a
training job's is (`rlpipe.jobs.job_owner`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rlpipe.data.data_config import DataSpec
from rlpipe.data.features import HISTORY
from rlpipe.data.sources import load_data
from rlpipe.envs.market import quotes
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError, DataError, PolicyError, SliceError
from rlpipe.forward.broker import PRICES, Broker, SimBroker
from rlpipe.forward.session import Decision, Session
from rlpipe.jobs.health_job import judge_version
from rlpipe.jobs.job_config import PaperJob
from rlpipe.jobs.job_owner import FolderLock
from rlpipe.jobs.paper_record import PaperRecord
from rlpipe.policy.model import PolicyModel
from rlpipe.policy.resolved import ModelRef, load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import RunLog, Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaperResult:
    run_id: str
    bars: int
    total: float
    hold_total: float
    model_version: str | None


def run_paper(job: PaperJob) -> PaperResult:
    """Trade `job.model` bar by bar on `job.data`; see the module docstring."""
    tracker = Tracker.of(job.tracking)
    ref = resolve_model(tracker, job.model)
    policy = load_policy(tracker, ref)
    df = load_data(job.data)
    check_bars(df, policy, job.model, first_bar(job, df))
    folder = job.root / job.paper.dir / _key(ref, job)
    lock = FolderLock(folder, f"paper {ref.uri} on {job.data.path or 'synthetic'}")
    lock.acquire()
    try:
        record = PaperRecord(folder)
        saved = record.read() if job.resume else None
        if saved is None:
            record.clear()
        with tracker.run(_name(ref), _tags(ref, job), resume_id=saved.run_id if saved else None) as run:
            record.start(run.run_id)
            session = _session(policy, job.paper.broker, first_bar(job, df))
            if saved is not None:
                session.restore(saved.state)
            judge = _judge(job, ref, record, run, session)
            total = _trade(job, session, record, run, df, saved.last_time if saved else None, judge)
            judge()
        _link(tracker, ref, run.run_id)
        record.clear()
    finally:
        lock.release()
    return PaperResult(run.run_id, session.bars, *total, ref.version)


def check_bars(df: pd.DataFrame, policy: PolicyModel, model: str, start: pd.Timestamp) -> None:
    """Refuse bars at another spacing than the policy's, and traded bars inside its recorded training
    or validation windows (+ embargo)."""
    meta = policy.meta
    step = pd.Series(df.index).diff().median() / pd.Timedelta(hours=1)
    if len(df) > 1 and not np.isclose(step, float(meta["bar_hours"]), rtol=0.01):
        raise PolicyError(f"{model} was trained on {meta['bar_hours']:g} h bars but the data's bars are "
                          f"{step:g} h apart (median); resample them to {meta['bar_hours']:g} h")  # fmt: skip
    if len(df) < HISTORY:
        raise DataError(f"the data has {len(df)} bars; paper trading needs {HISTORY} for the first features")
    embargo = pd.Timedelta(meta.get("embargo", "0D"))
    traded = df.index[df.index >= start]
    recorded = [("training", w) for w in meta.get("lineage_train_windows") or meta.get("train_windows") or []]
    recorded += [("validation", w) for w in meta.get("validation_windows") or []]
    after = max((pd.Timestamp(end) + embargo for _, (_, end) in recorded), default=None)
    for role, (lo_w, end) in recorded:
        lo, hi = pd.Timestamp(lo_w) - embargo, pd.Timestamp(end) + embargo
        inside = traded[(traded >= lo) & (traded <= hi)]
        if len(inside):
            raise SliceError(
                f"{model} has seen these bars: traded bars {inside[0]} .. {inside[-1]} lie inside its {role} "
                f"window {lo_w} .. {end} (+ embargo {embargo}); paper trade it on bars after {after} "
                "(paper.start: earlier bars of the file only warm the features up)"
            )


def _trade(
    job: PaperJob,
    session: Session,
    record: PaperRecord,
    run: RunLog,
    df: pd.DataFrame,
    after: str | None,
    judge: Callable[[], None],
) -> tuple[float, float]:
    """Feed every bar (after the last one saved) to the session; returns (total, buy-and-hold total)."""
    pending: list[Decision] = []
    last: Decision | None = None
    try:
        for stamp, bar, volume in _bars(job, df, after):
            last = session.on_bar(stamp, bar, volume)
            pending.append(last)
            if job.follow or len(pending) >= job.paper.save_every:
                record.flush(run, pending, session.state())
                pending = []
            if job.follow and session.first >= 0 and (last.bar - session.first) % job.paper.judge_every == 0:
                judge()
        if last is not None:
            pending.append(session.end(last.time, last.close))
    finally:  # a stop (SIGTERM, Ctrl-C) keeps every bar already traded
        record.flush(run, pending, session.state())
    return record.finish(run, session.first)


Bar = tuple[pd.Timestamp, np.ndarray, float]
"""A bar's time, its high, low, close, bid, ask, and its volume."""


def _judge(
    job: PaperJob, ref: ModelRef, record: PaperRecord, run: RunLog, session: Session
) -> Callable[[], None]:
    """The health verdict of the record so far (`rlpipe.jobs.health_job`), for a registered version."""

    def judge() -> None:
        equity = record.equity(session.first)
        if ref.name and ref.version and len(equity) > 1:
            tracking = dataclasses.replace(job.tracking, registered_model=ref.name)
            judge_version(tracking, job.registry, ref.version, equity, job.health, run)

    return judge


def _bars(job: PaperJob, df: pd.DataFrame, after: str | None) -> Iterator[Bar]:
    """The bars after `after` (an ISO stamp), then, following, the ones appended to the file."""
    seen = pd.Timestamp(after) if after else None
    idle_since = time.monotonic()
    while True:
        new = df if seen is None else df[df.index > seen]
        prices = _quotes(new, job.data.spread_bps)
        for i, stamp in enumerate(new.index):
            yield stamp, prices[i], float(new["volume"].iloc[i])
        if len(new):
            seen, idle_since = new.index[-1], time.monotonic()
        idle = job.paper.idle_stop_s and time.monotonic() - idle_since > job.paper.idle_stop_s
        if not job.follow or idle:
            return
        time.sleep(job.paper.poll_s)
        df = _reload(job.data)


def _quotes(df: pd.DataFrame, spread_bps: float) -> np.ndarray:
    """high, low, close, bid, ask per bar, quoted as `rlpipe.envs.market.make_market` quotes them."""
    bid, ask = quotes(df, spread_bps)
    cols = {"high": df["high"], "low": df["low"], "close": df["close"], "bid": bid, "ask": ask}
    return np.column_stack([np.asarray(cols[k], np.float64) for k in PRICES])


def _reload(data: DataSpec) -> pd.DataFrame:
    """The followed file again; a half-written last line is read again at the next look."""
    for _ in range(10):
        try:
            return load_data(data)
        except DataError:
            time.sleep(0.1)
    return load_data(data)


def _session(policy: PolicyModel, broker_class: str, start: pd.Timestamp) -> Session:
    meta = policy.meta
    args = (SimConfig(**meta["sim"]), float(meta["bar_hours"]), len(policy.stats.columns))
    broker: Broker = _broker_class(broker_class)(*args) if broker_class else SimBroker(*args)
    return Session(policy.observation_policy(), policy.stats, broker, start)


def first_bar(job: PaperJob, df: pd.DataFrame) -> pd.Timestamp:
    """The first bar the session may trade: `paper.start`, and not before the features are complete."""
    complete = df.index[min(HISTORY - 1, len(df) - 1)]
    if not job.paper.start:
        return complete
    try:
        start = pd.Timestamp(job.paper.start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"paper.start={job.paper.start!r} is not a timestamp") from exc
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    return max(start, complete)


def _broker_class(path: str) -> type:
    module, _, name = path.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"paper.broker={path!r} cannot be imported ({exc}); give package.module.Class of a Broker "
            "(rlpipe.forward.broker), or leave it empty for the simulated broker"
        ) from exc
    return found


def _key(ref: ModelRef, job: PaperJob) -> str:
    where = f"{ref.uri}|{job.data.path or 'synthetic'}|{job.tracking.uri}|{job.tracking.experiment}"
    return hashlib.sha1(where.encode()).hexdigest()[:12]


def _name(ref: ModelRef) -> str:
    return f"paper-{ref.name or 'run'}-v{ref.version or ref.run_id}"


def _tags(ref: ModelRef, job: PaperJob) -> dict[str, str]:
    return {
        T.KIND: T.PAPER,
        T.MODEL_URI: job.model,
        T.MODEL_NAME: ref.name or "",
        T.MODEL_VERSION: ref.version or "",
        T.SOURCE_RUN_ID: ref.run_id or "",
        T.DATA_PATH: str(job.data.path or "synthetic"),
    }


def _link(tracker: Tracker, ref: ModelRef, run_id: str) -> None:
    if ref.name and ref.version:
        tracker.client.set_model_version_tag(ref.name, ref.version, T.LAST_PAPER_RUN, run_id)
