"""Every metric namespace of a run in one place: one family per prefix, no prefix repeated in a key.

Plain strings, no mlflow import. The MLflow UI groups a run's charts by the part of a key before its
last '/' and orders the groups alphabetically, so the prefixes are chosen to put the learning
curves first:

    curve/<sb3 key>                 SB3's learning curves stepped by timesteps (curve/train/loss,
                                    curve/rollout/ep_rew_mean, curve/time/fps)
    curve/validation/<aggregate>    the validation score of each checkpoint length, stepped by it
    data/<fact>                     the data's bars and bars per year (one value, step 0)
    gate/<name>                     a run gate's outcome, 1 passed / 0 failed (step 0)
    slice/<slice>/<metric>          one slice's backtest (slice names are unique within a run);
    slice/<slice>/baseline_<policy>_total   a passive baseline's total on that slice
    <role>/<aggregate>              the aggregates that rank and gate: test/total,
                                    validation/sharpe_mean, train/total (step 0)
    time/<figure>                   wall-clock figures of the job (step 0)

Every value that is not a curve is logged at step 0, which the UI draws as a bar, not as a
one-point time series. Stores written before this layout (until 2026-12) hold `train/<sb3 key>`,
`checkpoint/validation/<aggregate>`, `<role>/<slice>/<metric>` and `train/num_timesteps`; the
readers of this package only read the keys both layouts share (`<role>/<aggregate>`, `gate/`,
`data/`, `time/`).
"""

from __future__ import annotations

CURVE = "curve/"
"""Learning curves, stepped by timesteps."""
CHECKPOINT_CURVE = f"{CURVE}validation/"
"""`curve/validation/<aggregate>`: the validation score of each candidate training length."""
SLICE = "slice/"
GATE = "gate/"
DATA = "data/"
TIME = "time/"
BARS_PER_YEAR = f"{DATA}bars_per_year"
"""The data's bars per year (what annualises every Sharpe ratio of the run)."""
BARS = f"{DATA}bars"

_LEGACY_CURVE = "train/"
"""SB3's curves were `train/<sb3 key>` until 2026-12 (still in resumable states saved then)."""


def per_slice(slice_name: str, metric: str) -> str:
    """`slice/<slice>/<metric>`: one slice's backtest figure."""
    return f"{SLICE}{slice_name}/{metric}"


def baseline_total(slice_name: str, policy: str) -> str:
    """`slice/<slice>/baseline_<policy>_total`: a passive baseline's total on one slice."""
    return per_slice(slice_name, f"baseline_{policy}_total")


def aggregate(role: str, name: str) -> str:
    """`<role>/<aggregate>`: what ranks (validation) and gates (test) a run."""
    return f"{role}/{name}"


def gate(name: str) -> str:
    """`gate/<name>`: a run gate's outcome."""
    return f"{GATE}{name}"


def curve(sb3_key: str) -> str:
    """`curve/<sb3 key>` of one of SB3's logged scalars; a key already in the earlier layout
    (`train/<sb3 key>`, SB3's own keys hold a single '/') is moved to the new one."""
    if sb3_key.startswith(_LEGACY_CURVE) and sb3_key.count("/") == 2:
        sb3_key = sb3_key.removeprefix(_LEGACY_CURVE)
    return sb3_key if sb3_key.startswith(CURVE) else f"{CURVE}{sb3_key}"
