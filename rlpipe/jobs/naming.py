"""A job's run name (what differs between the runs of a sweep comes first, and the name stays short)
and a sweep's id.

The MLflow run list cuts a name after a dozen characters, so a name starts with the seed, then the
values the sweep varies (the keys its command swept, recorded on its parent run as `rlpipe.swept`),
then the rest of the configuration's label (agent-env-reward-t<steps>, the same for every seed):

    s1-ppo-management-pnl_fees-t300000              seed sweep (only the seed varies)
    s6-t5000-ppo-management-pnl_fees                seed x timesteps
    s1-lr=0.000312-ec=0.0123-gamma=0.99-ppo-...     an Optuna search over three agent keywords
    s6-explorer-3-ppo-management-pnl_fees-t710000   a weekly member (its role says which)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

Varied = tuple[tuple[str, str], ...]
"""(config key, value as the job's override gives it) of each key the job's sweep varies."""

LABEL_PARTS = {
    "agent": "agent", "agent._target_": "agent", "env": "env", "env.kind": "env",
    "reward": "reward", "reward.kind": "reward", "timesteps": "timesteps",
}  # fmt: skip
"""Swept keys that are a part of the configuration's label: that part moves to the front."""
SHOWN_OTHERWISE = ("seed", "weekly.job")
"""The seed leads every name; a weekly job's index is its role, which the label already carries."""
HIDDEN = ("pbt.", "hydra.")
"""Keys set by a sweeper for its own bookkeeping, not values a reader compares."""


def varied_values(overrides: Sequence[str], swept: Sequence[str]) -> Varied:
    """The job's value of each swept key, from its Hydra overrides (`key=value`, `+key=value`,
    `group@package=value`), in the sweep's order; the seed and sweeper bookkeeping left out."""
    given: dict[str, str] = {}
    for text in overrides:
        key, sep, value = text.lstrip("+~").partition("=")
        if sep:
            given[key.split("@")[0]] = value
    return tuple(
        (k, given[k]) for k in swept if k in given and k not in SHOWN_OTHERWISE and not k.startswith(HIDDEN)
    )


def run_name(seed: int, prefix: str, label: Mapping[str, str], varied: Varied) -> str:
    """`s<seed>[-<prefix>]-<what the sweep varies>-<the rest of the label>`.

    `label` holds the parts of the configuration's label by name (agent, env, reward, timesteps);
    a swept part moves to the front, any other swept key reads `<abbreviation>=<value>` (a Hydra
    group choice, such as `slices=walk_forward`, only its value)."""
    moved = list(dict.fromkeys(LABEL_PARTS[k] for k, _ in varied if k in LABEL_PARTS))
    others = [(k, v) for k, v in varied if k not in LABEL_PARTS]
    short = _abbreviations([k for k, _ in others])
    extra = [_shown(v) if _is_choice(k, v) else f"{short[k]}={_shown(v)}" for k, v in others]
    rest = [v for k, v in label.items() if k not in moved]
    return "-".join([f"s{seed}", *([prefix] if prefix else []), *(label[k] for k in moved), *extra, *rest])


def _abbreviations(keys: Sequence[str]) -> dict[str, str]:
    """A key's last component, by its initials when it has several words (learning_rate -> lr);
    the whole last component for keys whose initials would collide."""
    last = {k: k.rsplit(".", 1)[-1] for k in keys}
    short = {
        k: "".join(w[0] for w in word.split("_") if w) if "_" in word else word for k, word in last.items()
    }
    clash = {s for s in short.values() if list(short.values()).count(s) > 1}
    return {k: last[k] if short[k] in clash else short[k] for k in keys}


def _is_choice(key: str, value: str) -> bool:
    """A Hydra group choice (`reward=shaped`, `slices=walk_forward`): a top-level key, not a number."""
    if "." in key:
        return False
    try:
        float(value)
    except ValueError:
        return True
    return False


def _shown(value: str) -> str:
    """A value as short as it reads: floats to 3 significant digits, a path to its file name."""
    text = value.strip("'\"")
    try:
        x = float(text)
    except ValueError:
        return PurePosixPath(text).name if "/" in text else text
    return f"{x:.3g}" if len(text) > 6 and any(c in text for c in ".eE") else text


def sweep_id_for(sweep_dir: str) -> str:
    """A readable, unique id of a multirun: its folder name plus a hash of its full path."""
    path = str(Path(sweep_dir).resolve())
    return f"{Path(path).name}-{hashlib.sha1(path.encode()).hexdigest()[:6]}"
