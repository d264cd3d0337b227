"""Hand-made records of judged runs: a run record for the sweep gates and a job row as the store gives
it back."""

from __future__ import annotations

import numpy as np

from rlpipe.gates.rules import PAPER, PASS, REVIEW
from rlpipe.gates.sweep_gates import RunRecord
from rlpipe.tracking.rows import JobRow

GOOD_TEST = {
    "total": 0.2,
    "sharpe_mean": 2.0,
    "consistency": 0.8,
    "max_drawdown": 0.05,
    "profit_factor": 1.5,
    "sharpe_std": 1.0,
}


def record(
    config: str,
    seed: int,
    *,
    drift: float = 0.001,
    verdict: str = PASS,
    total: float = 0.2,
    sharpe: float = 2.0,
    cls: str = REVIEW,
    dep: str = PAPER,
    missing: tuple[str, ...] = (),
    n: int = 600,
    label: str | None = None,
    val: float | None = None,
) -> RunRecord:
    rng = np.random.default_rng([seed, ord(config[0])])
    returns = drift + 0.01 * rng.standard_normal(n)
    test = {**GOOD_TEST, "total": total, "sharpe_mean": sharpe}
    validation = {"sharpe_mean": total if val is None else val}  # ranks like the test unless told
    return RunRecord(
        f"{config}-{seed}",
        config,
        seed,
        verdict,
        test,
        cls,
        dep,
        returns,
        str(seed),
        label or config,
        missing,
        validation=validation,
    )


LABEL_A, LABEL_B = "ppo-management-pnl_fees-t2000", "ppo-management-pnl-t2000"


def job_row(
    run_id: str,
    *,
    seed: int | None = 1,
    config_hash: str = "a",
    label: str = LABEL_A,
    status: str = "FINISHED",
    verdict: str = PASS,
    sweep_verdict: str = "",
    version: str = "",
    test: dict[str, float] | None = None,
) -> JobRow:
    """A recorded job run as the store gives it back (FAILED runs have no test metrics)."""
    return JobRow(
        run_id=run_id,
        run_name=label if seed is None else f"{label}-s{seed}",
        status=status,
        seed=seed,
        config_hash=config_hash,
        label=label,
        timesteps=2000,
        agent="ppo",
        env="management",
        reward=label.split("-")[2],
        verdict=verdict,
        sweep_verdict=sweep_verdict,
        classification="REVIEW",
        deployment="paper",
        regimes_missing=(),
        model_version=version,
        error="boom" if status == "FAILED" else "",
        test=test or {},
    )
