"""What a continued model trains on and what its forgetting guard scores.

Data: a child of `init_from` trains on its own training windows split where its ancestors'
training ended. `continuation.data=latest` keeps only the bars after that (the new data);
`mix` (default) draws `recent_fraction` (70 %) of its episodes there and the rest from the older
bars; `all` draws from every training bar alike, as a new model does. The child's validation and
test slices are its own, built on the current data, and must stay out of every generation's
training (`lineage.not_trained_by_ancestors`).

Forgetting: the guard scores parent and child on the *parent's* validation slices (recorded in
its policy), what the parent was chosen on; on the child's when the parent recorded none or its
slices are not in this job's data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rlpipe.data.slices import Window, recorded_training, resolve
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError, SliceError
from rlpipe.evaluation.assessment import Assessment
from rlpipe.gates.rules import GatesConfig
from rlpipe.jobs.job_config import ContinuationSpec
from rlpipe.jobs.lineage import Parent, forgetting_guard
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import RunLog
from rlpipe.types import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mix:
    """Training windows as bar ranges, each window's share of the episodes (None: by size), and
    what the run records about it."""

    ranges: list[tuple[int, int]]
    shares: list[float] | None
    text: str


@dataclass
class Family:
    """What a continued model trained on, and parent and child scored on the guard's windows."""

    mix: Mix
    where: str
    """Which validation slices the guard scores on (`guard_windows`)."""
    parent: Metrics
    child: Metrics | None = None


def trained_until(parent: Parent) -> pd.Timestamp | None:
    """The last bar any generation of `parent`'s family trained on."""
    ends = [pd.Timestamp(w[1]) for w in parent.trained_windows]
    return max(ends) if ends else None


def training_mix(
    spec: ContinuationSpec, parent: Parent, ranges: Sequence[tuple[int, int]], index: pd.DatetimeIndex,
    sim: SimConfig,
) -> Mix:  # fmt: skip
    """Split the child's training ranges where its ancestors' training ended and weight them."""
    cut = trained_until(parent)
    if spec.data == "all" or cut is None:
        return Mix(list(ranges), None, "all training bars alike")
    pos = int(index.searchsorted(cut, side="right"))
    fits = sim.episode_bars + sim.reset_margin_bars + 1
    recent = [(max(lo, pos), hi) for lo, hi in ranges if hi - max(lo, pos) > fits]
    older = [(lo, min(hi, pos)) for lo, hi in ranges if min(hi, pos) - lo > fits]
    where = f"after the ancestors' training ended ({cut})"
    if not recent:
        if spec.data == "latest":
            raise ConfigError(
                f"continuation.data=latest: the training slices hold no episode's worth of bars {where}; "
                "add newer data, move the slices, or use continuation.data=mix"
            )
        return Mix(older, None, f"no training bars {where}: trained on the older bars only")
    if spec.data == "latest" or not older or spec.recent_fraction >= 1.0:
        return Mix(recent, None, f"latest: {_bars(recent)} bars {where}")
    share = spec.recent_fraction
    shares = _spread(recent, share) + _spread(older, 1.0 - share)
    text = (f"mix: {share:.0%} of episodes from {_bars(recent)} bars {where}, "
            f"{1 - share:.0%} from {_bars(older)} older bars")  # fmt: skip
    return Mix(recent + older, shares, text)


def _bars(ranges: Sequence[tuple[int, int]]) -> int:
    return sum(hi - lo for lo, hi in ranges)


def _spread(ranges: Sequence[tuple[int, int]], share: float) -> list[float]:
    """`share` spread over `ranges` in proportion to their bars."""
    total = _bars(ranges)
    return [share * (hi - lo) / total for lo, hi in ranges]


def guard_windows(parent: Parent, own: Sequence[Window], index: pd.DatetimeIndex) -> tuple[list[Window], str]:
    """The windows the forgetting guard scores on: the parent's validation slices when it recorded
    them and they lie in this data, else the child's own validation windows; and which it is."""
    mine = [w for w in own if w.slice.role == "validation"]
    if not parent.validation_windows:
        return mine, "the child's validation slices (the parent recorded none)"
    slices = recorded_training(parent.validation_windows, "parent_validation", role="validation")
    try:
        return resolve(slices, index), "the parent's validation slices"
    except SliceError as exc:
        return mine, f"the child's validation slices (the parent's are not in this data: {exc})"


def record_guard(run: RunLog, family: Family | None, gates: GatesConfig, a: Assessment, name: str) -> bool:
    """A continued model's data mix and forgetting guard: tagged, said in the verdict reason; True
    when the child is held back."""
    if family is None or family.child is None:
        return False
    metric = gates.select_metric
    found = forgetting_guard(family.parent.get(metric, math.nan), family.child.get(metric, math.nan),
                             gates.forgetting_tolerance, metric)  # fmt: skip
    text = f"{found.text}, on {family.where}"
    run.log_metrics({T.FAMILY_PARENT: family.parent.get(metric, math.nan),
                     T.FAMILY_CHILD: family.child.get(metric, math.nan)})  # fmt: skip
    run.set_tags({T.FORGETTING: text, T.CONTINUATION_DATA: family.mix.text,
                  **({T.PROMOTABLE: "false"} if found.held else {})})  # fmt: skip
    if found.held:
        a.reason += f"; forgetting guard {text}: never staged or crowned, the parent keeps its aliases"
        log.warning("%s: forgetting guard %s", name, text)
    return found.held
