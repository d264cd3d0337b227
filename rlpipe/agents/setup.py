"""Device choice and per-job seeding."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import CategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy, BaseModel, BasePolicy
from threadpoolctl import threadpool_limits

from rlpipe.agents.forward import numpy_forward
from rlpipe.errors import ConfigError


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device={device!r}; expected auto, cpu or cuda")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("device=cuda but torch sees no CUDA device; use device=auto or device=cpu")
    return "cuda" if device == "auto" and has_cuda else "cpu" if device == "auto" else device


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_threads(parallel_jobs: int = 1) -> int:
    """The threads of a job with `threads=null` (see `bound_threads`)."""
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    return max(1, usable_cores() // max(1, parallel_jobs))


def bound_threads(threads: int | None, parallel_jobs: int = 1) -> int:
    """Set torch's and the BLAS libraries' thread counts for this job; returns the count.

    None takes `OMP_NUM_THREADS` when the environment sets it (Ray sets it to a task's CPUs), else
    the usable cores divided by the jobs running at once: oversubscribed threads on a shared
    machine make training more than ten times slower.
    """
    n = threads if threads is not None else default_threads(parallel_jobs)
    torch.set_num_threads(n)
    threadpool_limits(n)
    return n


def warm_up_torch() -> None:
    """Import what torch's first optimizer step imports (the first `Adam` brings in `torch._dynamo`,
    about a second), for a process that will train: no random number is drawn."""
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([weight], lr=1e-3)
    (weight * 2.0).sum().backward()
    optimizer.step()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch for this job (the env is seeded through its own generators)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def deterministic_policy(model: BaseAlgorithm) -> Callable[[np.ndarray], np.ndarray]:
    """The model's deterministic actions for a batch of observations, with the weights it has now
    (ask again after it trains more).

    In NumPy where `rlpipe.agents.forward` knows the network (what rlpipe trains, on any device), else
    the policy network called directly under `inference_mode`: the same forward pass as
    `model.predict(obs, deterministic=True)` without its per-call checks and reshaping, which
    dominate at evaluation batch sizes.
    """
    policy = model.policy
    policy.set_training_mode(False)
    fast = numpy_forward(policy)
    if fast is not None:
        return fast
    predict = _categorical_mode(policy) or (lambda obs: policy._predict(obs, deterministic=True))
    device = policy.device  # a property that walks the parameters: once, not per step

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return predict(torch.as_tensor(obs, device=device)).cpu().numpy()

    return act


def _categorical_mode(policy: BasePolicy) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """For an actor-critic policy over discrete actions: the mode of its action distribution,
    computed with the very operations SB3's `Categorical` uses (normalised logits, softmax, argmax)
    but without building a distribution object per step, which is most of the evaluation's cost."""
    categorical = isinstance(getattr(policy, "action_dist", None), CategoricalDistribution)
    if not (isinstance(policy, ActorCriticPolicy) and categorical):
        return None

    def mode(obs: torch.Tensor) -> torch.Tensor:
        features = BaseModel.extract_features(policy, obs, policy.pi_features_extractor)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
        logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        return torch.softmax(logits, dim=-1).argmax(dim=-1)

    return mode


def environment_info(device: str) -> dict[str, str]:
    """What a rerun needs besides config, seed, code and data: interpreter, libraries, threads."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "torch_threads": str(torch.get_num_threads()),
    }
    for pkg in (
        "torch",
        "stable-baselines3",
        "gymnasium",
        "numpy",
        "numba",
        "pandas",
        "mlflow",
        "hydra-core",
    ):
        try:
            info[pkg] = version(pkg)
        except PackageNotFoundError:
            info[pkg] = "not installed"
    if device == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info
