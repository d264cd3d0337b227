"""Everything an SB3 agent's next update depends on besides its weights and optimizer.

A training run stopped at a rollout start and continued from `capture`'s state takes exactly the
steps the uninterrupted run takes: the random generators (python, numpy, torch, the action
space's), the env's own state (`get_state`/`set_state`, which the trading and dummy envs have; an
env without them is started afresh, and the run is then not exact), the last observation and
episode starts SB3 carries between rollouts, the episode statistics behind `rollout/ep_rew_mean`,
the last update's logged values (SB3 writes them out a rollout later), the update counters and,
for an off-policy agent, its replay buffer and exploration rate. The state holds only tensors and
plain values, so `torch.load(weights_only=True)` reads it back without running code.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm

_COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls")
_FLOATS = ("_current_progress_remaining", "exploration_rate")
NUMBER = (int, float, np.number)
_REPLAY = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def capture(agent: BaseAlgorithm) -> dict[str, Any]:
    """The agent's resumable state beyond its network (see the module docstring)."""
    get_env_state = getattr(agent.get_env(), "get_state", None)
    numpy_state = np.random.get_state(legacy=False)
    mt = numpy_state["state"]
    state: dict[str, Any] = {
        "counters": {k: int(getattr(agent, k)) for k in _COUNTERS if hasattr(agent, k)},
        "floats": {k: float(getattr(agent, k)) for k in _FLOATS if hasattr(agent, k)},
        "rng": {
            "python": random.getstate(),
            "numpy": {**numpy_state, "state": {**mt, "key": mt["key"].tolist()}},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "action_space": agent.action_space.np_random.bit_generator.state,
        },
        "env": _pack(get_env_state()) if get_env_state else None,
        "last_obs": _pack(agent._last_obs),
        "last_original_obs": _pack(getattr(agent, "_last_original_obs", None)),
        "last_episode_starts": _pack(agent._last_episode_starts),
        "ep_info": [_plain(e) for e in agent.ep_info_buffer or ()],
        "ep_success": [float(s) for s in agent.ep_success_buffer or ()],
        "logger": _pending_logs(agent),
    }
    buffer = getattr(agent, "replay_buffer", None)
    if buffer is not None:
        arrays = {k: _pack(getattr(buffer, k, None)) for k in _REPLAY}
        state["replay"] = {**arrays, "pos": int(buffer.pos), "full": bool(buffer.full)}
    return state


def restore(agent: BaseAlgorithm, state: dict[str, Any]) -> None:
    """Put `capture`'s state back into `agent` (built with the same spec, weights already loaded)."""
    for k, v in state["counters"].items():
        setattr(agent, k, int(v))
    for k, f in state["floats"].items():
        setattr(agent, k, float(f))
    rng = state["rng"]
    random.setstate(_tuples(rng["python"]))
    numpy_state = rng["numpy"]
    key = np.asarray(numpy_state["state"]["key"], np.uint32)
    np.random.set_state({**numpy_state, "state": {**numpy_state["state"], "key": key}})
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    agent.action_space.np_random.bit_generator.state = rng["action_space"]
    if state["env"] is None:  # an env without get_state(): SB3 starts it afresh (not exact)
        return
    agent.get_env().set_state(_unpack(state["env"]))  # type: ignore[union-attr]
    agent._last_obs = _unpack(state["last_obs"])
    agent._last_episode_starts = _unpack(state["last_episode_starts"])
    if hasattr(agent, "_last_original_obs"):
        agent._last_original_obs = _unpack(state["last_original_obs"])
    logger = getattr(agent, "_logger", None)  # set by `set_logger` or `learn`
    saved = state["logger"]
    if logger is not None:
        logger.name_to_value.update({k: _untyped(v) for k, v in saved["value"].items()})
        logger.name_to_count.update(saved["count"])
        logger.name_to_excluded.update({k: tuple(v) if v else v for k, v in saved["excluded"].items()})
    window = agent._stats_window_size
    agent.ep_info_buffer = deque(state["ep_info"], maxlen=window)
    agent.ep_success_buffer = deque(state["ep_success"], maxlen=window)
    if "replay" in state:
        buffer = agent.replay_buffer  # type: ignore[attr-defined]
        for k in _REPLAY:
            if state["replay"][k] is not None:
                setattr(buffer, k, _unpack(state["replay"][k]))
        buffer.pos, buffer.full = int(state["replay"]["pos"]), bool(state["replay"]["full"])


def _pending_logs(agent: BaseAlgorithm) -> dict[str, dict[str, Any]]:
    """What the last update recorded and SB3 dumps only at the next rollout (its logger's buffer)."""
    logger = getattr(agent, "_logger", None)  # none before the agent's first `learn`
    if logger is None:
        return {"value": {}, "count": {}, "excluded": {}}
    return {
        "value": {k: _typed(v) for k, v in logger.name_to_value.items() if isinstance(v, NUMBER)},
        "count": {k: int(v) for k, v in logger.name_to_count.items()},
        "excluded": {k: list(v) if v else v for k, v in logger.name_to_excluded.items()},
    }


def _typed(value: int | float | np.number) -> tuple[float, str]:
    """A logged number and its type (SB3 logs numpy float32 values, which the history leaves out)."""
    kind = np.dtype(type(value)).name if isinstance(value, np.number) else type(value).__name__
    return float(value), kind


def _untyped(saved: tuple[float, str]) -> int | float | np.number:
    value, kind = saved
    if kind in ("int", "bool"):
        return int(value)
    return float(value) if kind == "float" else np.dtype(kind).type(value)


def _pack(obj: Any) -> Any:
    """numpy arrays -> tensors (what `torch.load(weights_only=True)` reads), through dicts and lists."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, dict):
        return {k: _pack(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_pack(v) for v in obj]
    return obj


def _unpack(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v) for v in obj]
    return obj


def _plain(info: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in info.items()}


def _tuples(obj: Any) -> Any:
    """`random.setstate` wants the tuples `random.getstate` gave (a saved state may hold lists)."""
    return tuple(_tuples(v) for v in obj) if isinstance(obj, list | tuple) else obj
