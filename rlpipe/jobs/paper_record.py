"""A paper session's record: its folder (state, decisions) and what goes onto its MLflow run.

Folder files: `session.json` (the run id, the last saved bar's time, the session's plain values)
with `session.npz` (its arrays, read with `allow_pickle=False`: loading a state never runs code)
and `decisions.csv` (one row per bar). `flush` logs the new bars' points, appends their decisions,
then saves the state: a resumed session starts after the last bar whose state was saved.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rlpipe.errors import CheckpointError
from rlpipe.evaluation import metrics as mx
from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.files import write_atomic
from rlpipe.forward.session import Decision
from rlpipe.reports.plots import slice_plots
from rlpipe.tracking.tracker import Point, RunLog

STATE, ARRAYS, DECISIONS = "session.json", "session.npz", "decisions.csv"
HOURLY_YEAR = 24 * 365.0
POINTS = {"equity": "equity", "position": "position", "fees": "fees", "fills": "fills",
          "hold_equity": "buy_and_hold"}  # fmt: skip
"""Decision field -> the run's metric `paper/<name>`."""
STEPPED = ("position", "fees", "fills")
"""Fields logged only at the bars where they change."""


@dataclass(frozen=True)
class Saved:
    run_id: str
    last_time: str | None
    state: dict[str, Any]


class PaperRecord:
    """The folder of one paper session (model x file x store)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.run_id = ""
        self._last: dict[str, float] = {}

    def read(self) -> Saved | None:
        """The saved session, or None; a state that cannot be read is refused, naming the file."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            with np.load(self.folder / ARRAYS, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            return Saved(str(raw["run_id"]), raw.get("last_time"), _unflatten(raw["state"], arrays))
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"paper session state {path} is unreadable ({exc}); delete {self.folder} "
                                  "or run without resume=true to start a new session") from exc  # fmt: skip

    def clear(self) -> None:
        for name in (STATE, ARRAYS, DECISIONS):
            (self.folder / name).unlink(missing_ok=True)

    def start(self, run_id: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.run_id = run_id

    def flush(self, run: RunLog, decisions: list[Decision], state: dict[str, Any]) -> None:
        """Log the bars' points, append their decisions, then save the state (see the module docstring)."""
        if not decisions:
            return
        run.log_metric_series(self._points(decisions))
        frame = pd.DataFrame([d.row() for d in decisions])
        path = self.folder / DECISIONS
        frame.to_csv(path, mode="a", header=not path.exists(), index=False)
        tree, arrays = _flatten(state, "s")
        raw = {"run_id": self.run_id, "last_time": decisions[-1].time.isoformat(), "state": tree}
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        write_atomic(self.folder / ARRAYS, lambda f: f.write(buf.getvalue()))
        write_atomic(self.folder / STATE, lambda f: f.write(json.dumps(raw).encode()))

    def _points(self, decisions: list[Decision]) -> list[Point]:
        """Equity and buy-and-hold at every bar; position, fees and fills where they changed (a
        step function: its points are where it steps), stamped with the bar's time."""
        out: list[Point] = []
        for d in decisions:
            stamp = int(d.time.timestamp() * 1000)
            for attr, name in POINTS.items():
                value = float(getattr(d, attr))
                if attr in STEPPED and self._last.get(attr) == value:
                    continue
                self._last[attr] = value
                out.append((f"paper/{name}", value, d.bar, stamp))
        return out

    def equity(self, first: int) -> np.ndarray:
        """The policy's equity at every bar it traded so far (the record a health verdict judges)."""
        path = self.folder / DECISIONS
        if not path.exists() or first < 0:
            return np.zeros(0)
        frame = pd.read_csv(path, usecols=["bar", "equity"])
        return frame[frame["bar"] >= first].drop_duplicates("bar", keep="last")["equity"].to_numpy(float)

    def finish(self, run: RunLog, first: int) -> tuple[float, float]:
        """The session's summary, tear sheet and decisions on its run; returns (total, buy-and-hold total)."""
        path = self.folder / DECISIONS
        if not path.exists() or first < 0:
            return float("nan"), float("nan")
        frame = pd.read_csv(path)
        traded = frame[frame["bar"] >= first].drop_duplicates("bar", keep="last")
        times = pd.DatetimeIndex(pd.to_datetime(traded["time"], utc=True))
        results = [_result(AGENT, traded["equity"].to_numpy(float), times, traded),
                   _result("buy_and_hold", traded["hold_equity"].to_numpy(float), times, traded)]  # fmt: skip
        agent, hold = results[0].metrics, results[1].metrics
        run.log_metrics({**{f"paper/summary/{k}": v for k, v in agent.items()},
                         "paper/summary/buy_and_hold_total": hold["total"],
                         "paper/summary/bars": float(len(traded))})  # fmt: skip
        run.log_files([path], "paper")
        run.log_files(slice_plots(results, self.folder / "plots"), "plots")
        return agent["total"], hold["total"]


def _result(policy: str, equity: np.ndarray, times: pd.DatetimeIndex, traded: pd.DataFrame) -> SliceResult:
    hours = (times[1:] - times[:-1]).median() / pd.Timedelta(hours=1) if len(times) > 1 else 1.0
    per_year = HOURLY_YEAR / hours
    metrics = {
        "total": float(equity[-1] - 1.0),
        "max_drawdown": mx.max_drawdown(equity),
        "sharpe": mx.sharpe(mx.returns(equity), per_year),
        "fees": float(traded["fees"].iloc[-1]) if policy == AGENT else float("nan"),
        "fills": float(traded["fills"].iloc[-1]) if policy == AGENT else float("nan"),
    }
    agent = policy == AGENT
    fees = traded["fees"].to_numpy(float) if agent else np.full(len(equity), np.nan)
    turnover = traded["turnover"].to_numpy(float) if agent else np.full(len(equity), np.nan)
    return SliceResult("paper", "paper", "forward", policy, metrics, equity, str(times[0]), str(times[-1]),
                       times, fees, turnover, bars_per_year=per_year)  # fmt: skip


def _flatten(obj: Any, key: str) -> tuple[Any, dict[str, np.ndarray]]:
    """A JSON tree with each array replaced by {"array": name}, and the arrays by name."""
    if isinstance(obj, np.ndarray):
        return {"array": key}, {key: obj}
    if isinstance(obj, dict):
        tree, arrays = {}, {}
        for k, v in obj.items():
            tree[k], more = _flatten(v, f"{key}.{k}")
            arrays.update(more)
        return tree, arrays
    if isinstance(obj, list | tuple):
        parts = [_flatten(v, f"{key}.{i}") for i, v in enumerate(obj)]
        return [p[0] for p in parts], {k: a for p in parts for k, a in p[1].items()}
    return (obj.item() if isinstance(obj, np.generic) else obj), {}


def _unflatten(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {"array"}:
            return arrays[tree["array"]]
        return {k: _unflatten(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays) for v in tree]
    return tree
