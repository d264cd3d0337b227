"""Observation layout: the names of the position variables that follow the market features.

The one place that says which position variables an observation carries, in order, for each env
kind; the simulator's observation kernel (`rlpipe.envs.kernels.observe_batch`) writes them in this
order and the served policy reads its input columns by these names.

long / short: 1 while the position is on that side; size: open stake / `max_stake`; unrealised:
open PnL as a fraction of cost x `unrealised_scale`; avg_open_hours: mean age of the open stakes;
hours_in_position / last_open_hours: time since the last fill that opened a stake (0 while flat);
hours_since_close: time flat since the last close (0 while in a position). Durations are in
hours / `hours_scale`.
"""

from __future__ import annotations

from rlpipe.errors import ConfigError

POSITION_VARS: dict[str, tuple[str, ...]] = {
    "baseline": ("long", "short", "unrealised", "hours_in_position", "hours_since_close"),
    "management": (
        "long",
        "short",
        "size",
        "unrealised",
        "avg_open_hours",
        "last_open_hours",
        "hours_since_close",
    ),
}


def layout_of(kind: str) -> str:
    """The observation layout of env `kind` (a key of `POSITION_VARS`): baseline or management.

    `dummy` trains on a stand-in env with the baseline's spaces and is evaluated with the baseline
    fill model, so it has the baseline layout.

    Raises:
        ConfigError: `kind` is not an env kind.
    """
    layout = "baseline" if kind == "dummy" else kind
    if layout not in POSITION_VARS:
        raise ConfigError(f"env.kind={kind!r}; expected baseline, management or dummy")
    return layout


def position_vars(kind: str) -> tuple[str, ...]:
    """Names of the position variables of env `kind` (or of a layout), in observation order.

    Raises:
        ConfigError: `kind` is not an env kind.
    """
    return POSITION_VARS[layout_of(kind)]
