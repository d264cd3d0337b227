"""A policy traded bar by bar: at bar t it sees bars <= t only, its order settles on bar t+1.

`Session.on_bar` takes one complete bar at a time: the feature stream turns it into the bar's
feature row (equal to the batch features, `rlpipe.data.features.FeatureStream`), the broker settles
the order placed at the previous close against it, and, once the features are complete (the first
`HISTORY - 1` bars are warm-up, held flat), the policy decides at its close. Each bar leaves one
`Decision`. Nothing here reads a later bar, a file or a store: the job around it feeds the bars
(`rlpipe.jobs.paper_job`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rlpipe.data.features import HISTORY, FeatureStats, FeatureStream, normalise
from rlpipe.forward.broker import Account, Broker, BrokerError
from rlpipe.types import Float32Array, FloatArray

Policy = Callable[[Float32Array], np.ndarray]
ACTIONS = ("hold", "long", "short")


@dataclass(frozen=True)
class Decision:
    """What happened at one bar: the account after it settled, and the order placed at its close."""

    time: pd.Timestamp
    bar: int
    close: float
    action: str
    """hold / long / short at this bar's close; `warmup` before the features are complete; `end`."""
    filled: bool
    """An order placed at the previous close filled on this bar."""
    equity: float
    position: float
    """Signed quantity held after this bar."""
    fees: float
    fills: int
    hold_equity: float
    """Buy-and-hold through the same fills and fees."""
    turnover: float = 0.0
    """Notional traded so far (multiples of the starting capital)."""
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {**asdict(self), "time": self.time.isoformat()}


class Session:
    """One policy, one broker, one stream of bars (see the module docstring)."""

    def __init__(
        self, policy: Policy, stats: FeatureStats, broker: Broker, start: pd.Timestamp | None = None
    ) -> None:
        """`start`: the first bar the policy may decide at; earlier bars only warm the features up."""
        self.policy, self.stats, self.broker, self.start = policy, stats, broker, start
        self.stream = FeatureStream()
        self.bars = 0
        """Bars seen so far; the next bar's position."""
        self.first = -1
        """The first bar the policy decided at (-1: still warming up)."""

    def on_bar(self, time: pd.Timestamp, bar: FloatArray, volume: float) -> Decision:
        """Bar `self.bars`, complete: high, low, close, bid, ask (and its volume)."""
        t = self.bars
        high, low, close = float(bar[0]), float(bar[1]), float(bar[2])
        features = normalise(self.stream.push(close, high, low, volume)[None, :], self.stats)[0]
        account = self.broker.bar(t, bar, features)
        self.bars += 1
        if self.first < 0 and self.stream.count >= HISTORY and (self.start is None or time >= self.start):
            self.first = t
            self.broker.open(t)
        if self.first < 0:
            return _decision(time, t, close, "warmup", account)
        obs = np.concatenate([features, self.broker.observe(t)])[None, :]
        action = int(self.policy(obs.astype(np.float32))[0])
        try:
            self.broker.place(t, action)
        except BrokerError as exc:  # recorded, and the session goes on at the next bar
            return _decision(time, t, close, ACTIONS[0], account, note=str(exc))
        return _decision(time, t, close, ACTIONS[action], account)

    def end(self, time: pd.Timestamp, close: float) -> Decision:
        """The session ends at its last bar: the broker closes what is held (taker fee)."""
        t = self.bars - 1
        return _decision(time, t, close, "end", self.broker.close(t))

    def state(self) -> dict[str, Any]:
        return {"stream": self.stream.state(), "bars": self.bars, "first": self.first,
                "broker": self.broker.state()}  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        self.stream.restore(state["stream"])
        self.bars, self.first = int(state["bars"]), int(state["first"])
        self.broker.restore(state["broker"])


def _decision(time: pd.Timestamp, t: int, close: float, action: str, a: Account, note: str = "") -> Decision:
    account = (a.filled, a.equity, a.qty, a.fees, a.fills, a.hold, a.turnover)
    return Decision(time, t, close, action, *account, note=note)
