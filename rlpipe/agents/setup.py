"""Device choice and per-job seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from rlpipe.errors import ConfigError


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; 'cuda' without a GPU is an error."""
    if device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device={device!r}; expected auto, cpu or cuda")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ConfigError("device=cuda but torch sees no CUDA device; use device=auto or device=cpu")
    return "cuda" if device == "auto" and has_cuda else "cpu" if device == "auto" else device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch for this job (the env is seeded through its own generators)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
