"""`python -m benchmarks.gpu_policy` (needs a CUDA GPU): scoring a policy trained on the GPU.

PPO and DQN on a small env are trained a few updates with `device=cuda`; then, on 20,000
observations, the actions of `rlpipe.agents.setup.deterministic_policy` (NumPy, from a CPU copy of
the weights) are compared with SB3's `predict(deterministic=True)` on CUDA, again after more
training, and the seconds per call for a batch of 12 rows (a backtest's bar) are printed for it and
for SB3's own CUDA forward pass. Exit status 1 if the actions differ or no GPU is seen.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3 import DQN, PPO

from rlpipe.agents.setup import deterministic_policy
from rlpipe.envs.dummy import DummyEnv


def per_call_us(act: Callable[[np.ndarray], object], batch: np.ndarray, calls: int = 2000) -> float:
    act(batch)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        act(batch)
    torch.cuda.synchronize()
    return round((time.perf_counter() - t0) / calls * 1e6, 1)


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check needs a GPU")
    out: dict[str, object] = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}
    obs = np.random.default_rng(0).uniform(-3, 3, (20_000, 9)).astype(np.float32)
    for algo in (PPO, DQN):
        name, steps = algo.__name__, 2048 if algo is PPO else 512
        model = algo("MlpPolicy", DummyEnv(obs_dim=9), seed=5, device="cuda")
        for _ in range(2):  # the actions now, then after more training
            model.learn(steps)
            expected, _ = model.predict(obs, deterministic=True)
            out[f"{name}_same_actions"] = out.get(f"{name}_same_actions", True) and bool(
                np.array_equal(deterministic_policy(model)(obs), expected)
            )
        policy = model.policy
        policy.set_training_mode(False)

        def cuda(rows: np.ndarray, policy=policy) -> np.ndarray:
            with torch.inference_mode():
                return policy._predict(torch.as_tensor(rows, device="cuda"), deterministic=True).cpu().numpy()

        out[f"{name}_us_per_bar_numpy"] = per_call_us(deterministic_policy(model), obs[:12])
        out[f"{name}_us_per_bar_cuda"] = per_call_us(cuda, obs[:12])
    print(json.dumps(out, indent=1))
    sys.exit(0 if all(v for k, v in out.items() if k.endswith("_same_actions")) else 1)


if __name__ == "__main__":
    main()
