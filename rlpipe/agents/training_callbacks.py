"""Training callbacks and an SB3 logger sink that keeps every (key, value, step) it sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger
from tqdm.auto import tqdm


class HistoryWriter(KVWriter):
    """Collects SB3's logged scalars as (SB3 key, value, timesteps): the learning curves, which the
    job logs under its own prefix (`rlpipe.tracking.metric_keys.curve`)."""

    def __init__(self) -> None:
        self.points: list[tuple[str, float, int]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        for k, v in key_values.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                self.points.append((k, float(v), int(step)))

    def close(self) -> None:
        """Nothing to release."""


def history_logger() -> tuple[Logger, HistoryWriter]:
    """An SB3 logger whose only output is a `HistoryWriter` (returned too, to read the points)."""
    writer = HistoryWriter()
    return Logger(folder=None, output_formats=[writer]), writer


class ProgressCallback(BaseCallback):
    """Hands the training progress in [0, 1] to `on_progress` at every rollout start (the reward
    curriculum) and draws an optional progress bar."""

    def __init__(self, total: int, bar: bool, label: str, on_progress: Callable[[float], None]) -> None:
        super().__init__()
        self.total, self.bar_on, self.label = total, bar, label
        self.on_progress = on_progress
        self.bar: tqdm | None = None
        self._last = 0

    def _on_training_start(self) -> None:
        if self.bar_on:
            self.bar = tqdm(total=self.total, desc=self.label, unit="step", leave=False, dynamic_ncols=True)

    def _on_rollout_start(self) -> None:
        self.on_progress(min(1.0, self.num_timesteps / self.total))

    def _on_step(self) -> bool:
        if self.bar is not None and self.num_timesteps - self._last >= 1000:
            self.bar.update(self.num_timesteps - self._last)
            self._last = self.num_timesteps
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


class RolloutHook(BaseCallback):
    """Calls `hook(num_timesteps, final)` at every rollout start, once the policy has been updated
    on everything collected so far (final=False), and when training ends (final=True): the points
    at which a snapshot of the policy is the policy of a shorter training run."""

    def __init__(self, hook: Callable[[int, bool], None]) -> None:
        super().__init__()
        self.hook = hook

    def _on_rollout_start(self) -> None:
        self.hook(self.num_timesteps, False)

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.hook(self.num_timesteps, True)
