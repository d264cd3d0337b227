"""Where a paper (or live) session's orders go: the `Broker` contract and the simulated broker.

The contract, for anyone plugging in a real exchange or broker client (config key `paper.broker`,
a `_target_` class taking the session's `SimConfig` and bar length in hours):

- `open(first)`: the session starts at bar `first` (its features are complete); nothing is held.
- `bar(t, bar)`: bar t is complete (high, low, close, bid, ask). Every order placed at the close of
  bar t-1 is settled against it *before* this returns: a maker buy rests at bar t-1's bid and fills
  if bar t traded below it, a maker sell at its ask if bar t traded above it (a real broker reports
  what its exchange filled). Returns the account after bar t: equity, position, fees, fills.
- `observe(t)`: the position part of the policy's observation at bar t (the layout of
  `rlpipe.envs.layout`, as the simulator scales it).
- `place(t, action)`: the policy's decision at the close of bar t: 0 hold, 1 maker long (or close a
  short), 2 maker short (or close a long). It is settled by the next `bar` call; an order that
  cannot be placed is refused with `BrokerError`, which the session records and goes on.
- `close(t)`: the session ends at bar t: close what is held at its close with the taker fee.
- `state()` / `restore(state)`: plain arrays and numbers, so a killed session resumes where it
  stopped without acting twice on a bar.

`SimBroker` is that contract over the project's own simulator (`rlpipe.envs.sim.BatchSim`), one row
for the policy and one holding a long stake from the first bar (buy-and-hold through the same fills
and fees), so a session on a finished file is exactly the backtest of the same bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rlpipe.envs.kernels import LONG
from rlpipe.envs.market import Market
from rlpipe.envs.sim import BatchSim
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import RlpipeError
from rlpipe.types import Float32Array, FloatArray

PRICES = ("high", "low", "close", "bid", "ask")
OPEN_ENDED = 2**62
"""An episode end no bar reaches: a session closes its position only when it is told to."""


class BrokerError(RlpipeError):
    """A broker refused an order or cannot report the account (names the bar and why)."""


@dataclass(frozen=True)
class Account:
    """The account after a bar: equity (starting capital 1.0), signed quantity, fees and fills so far;
    `hold` is buy-and-hold's equity through the same fills and fees."""

    equity: float
    qty: float
    fees: float
    fills: int
    filled: bool
    """An order settled against this bar."""
    hold: float
    turnover: float = 0.0
    """Notional traded so far (multiples of the starting capital)."""


class Broker(Protocol):
    """See the module docstring."""

    def open(self, first: int) -> None: ...
    def bar(self, t: int, bar: FloatArray, features: Float32Array) -> Account: ...
    def observe(self, t: int) -> Float32Array: ...
    def place(self, t: int, action: int) -> None: ...
    def close(self, t: int) -> Account: ...
    def state(self) -> dict[str, Any]: ...
    def restore(self, state: dict[str, Any]) -> None: ...


class SimBroker:
    """The simulated broker: fills and fees by the training simulator, on a market that grows."""

    def __init__(self, cfg: SimConfig, bar_hours: float, n_features: int, capacity: int = 1024) -> None:
        self.cfg, self.bar_hours, self.n_features = cfg, bar_hours, n_features
        self._arrays = {k: np.zeros(capacity) for k in PRICES}
        self._features = np.zeros((capacity, n_features), np.float32)
        self.sim = BatchSim(self._market(), cfg, None, 2)
        self._action = np.zeros(2, np.int64)
        self._action[1] = LONG
        self._first = -1

    def _market(self) -> Market:
        a = self._arrays
        return Market(a["high"], a["low"], a["close"], a["bid"], a["ask"], self._features,
                      self.bar_hours, float("nan"))  # fmt: skip

    def _ensure(self, t: int) -> None:
        size = len(self._features)
        if t < size:
            return
        grow = max(2 * size, t + 1)
        for k, v in self._arrays.items():
            self._arrays[k] = np.concatenate([v, np.zeros(grow - size)])
        more = np.zeros((grow - size, self.n_features), np.float32)
        self._features = np.concatenate([self._features, more])
        self.sim.rebind(self._market())

    def open(self, first: int) -> None:
        self._first = first
        rows = np.arange(2)
        self.sim.reset_rows(rows, np.full(2, first), np.full(2, OPEN_ENDED))

    def bar(self, t: int, bar: FloatArray, features: Float32Array) -> Account:
        self._ensure(t)
        for i, k in enumerate(PRICES):
            self._arrays[k][t] = bar[i]
        self._features[t] = features
        self.sim.write_bar(t, np.asarray(bar, np.float64))
        if self._first < 0 or t <= self._first:
            return self._account(False)
        fills = int(self.sim.fill_count[0])
        self.sim.step(self._action)
        self._action[0] = 0
        return self._account(int(self.sim.fill_count[0]) > fills)

    def observe(self, t: int) -> Float32Array:
        return self.sim.observe()[0, self.n_features :]

    def place(self, t: int, action: int) -> None:
        if action not in (0, 1, 2):
            raise BrokerError(f"bar {t}: action {action!r} is not 0 (hold), 1 (long) or 2 (short)")
        self._action[0] = action

    def close(self, t: int) -> Account:
        """End at bar t, which the last `bar` call settled: close at its close with the taker fee."""
        before = int(self.sim.fill_count[0])
        self.sim.end[:] = t
        self.sim.t[:] = t - 1  # re-step onto bar t with nothing to fill: only the forced close acts
        self.sim.step(np.zeros(2, np.int64))
        return self._account(int(self.sim.fill_count[0]) > before)

    def _account(self, filled: bool) -> Account:
        s = self.sim
        return Account(float(s.equity[0]), float(s.qty[0]), float(s.fees[0]), int(s.fill_count[0]), filled,
                       float(s.equity[1]), float(s.turnover[0]))  # fmt: skip

    def state(self) -> dict[str, Any]:
        n = int(self.sim.t[0]) + 1 if self._first >= 0 else 0
        return {
            "sim": self.sim.get_state(),
            "prices": np.stack([self._arrays[k][:n] for k in PRICES]),
            "features": self._features[:n].copy(),
            "first": self._first,
            "action": self._action.copy(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        n = int(state["features"].shape[0])
        self._ensure(n)
        for i, k in enumerate(PRICES):
            self._arrays[k][:n] = state["prices"][i]
        self._features[:n] = state["features"]
        self.sim.rebind(self._market())
        self.sim.set_state(state["sim"])
        self._first = int(state["first"])
        self._action[:] = state["action"]
