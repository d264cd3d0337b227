"""The population-based-training sweeper (`experiment=pbt`, `hydra/sweeper=pbt`).

Hydra runs a sweeper in the launching process; this one launches the population one round at a
time through whatever launcher is configured (basic: one job after another; joblib: in parallel
processes; submitit/slurm: on nodes), reads each member's validation score back as the job's
return value, and between rounds replaces the bottom members by mutated copies of the top ones
(`rlpipe.jobs.pbt_population`). The plugin class Hydra instantiates is `hydra_plugins.rlpipe_pbt.PBTSweeper`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from rlpipe.cli.compose import group, job_kind
from rlpipe.cli.failures import Failure
from rlpipe.errors import CheckpointError, ConfigError, RlpipeError
from rlpipe.jobs.job_config import PBTRound
from rlpipe.jobs.pbt_population import Ledger, PBTSpec, copy_state, exploit_explore, member_folder, scaled

log = logging.getLogger(__name__)
SET_BY_SWEEPER = ("seed", "timesteps", "pbt.member", "pbt.round", "pbt.dir")


class PopulationRefused(CompactHydraException):
    """A user error in the population's plan or state: Hydra prints its message alone."""


class PBTSweeper(Sweeper):
    """Rounds of the population through the configured launcher, exploit/explore between them."""

    def __init__(self, **_: Any) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        """The population's rounds; a user error ends the sweep with its one line (exit status 2)."""
        try:
            return self._sweep(arguments)
        except RlpipeError as exc:
            raise PopulationRefused(Failure.of(exc).line()) from exc

    def _sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.hydra_context is not None
        cfg = self.config
        if cfg.get("pbt") is None:
            raise ConfigError("hydra/sweeper=pbt needs the pbt config: run with experiment=pbt")
        kind = job_kind(cfg)  # refuses init_from or weekly beside pbt
        assert isinstance(kind, PBTRound)
        spec = kind.pbt
        spec.check()
        given = _check_arguments(arguments, self.hydra_context, spec)
        sweep_dir = Path(cfg.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, sweep_dir / "multirun.yaml")
        root = sweep_dir / "pbt"
        ledger = Ledger.read(root)
        if ledger is not None and not cfg.resume:
            raise CheckpointError(
                f"{root} holds a population {ledger.rounds_done} round(s) in: pass resume=true to continue "
                "it, or another hydra.sweep.dir to start a new one"
            )
        ledger = ledger or Ledger(0, initial_hyper(spec, cfg))
        # MLflow here, not with the module: Hydra imports every plugin (this one through
        # hydra_plugins/rlpipe_pbt) when any command starts, before its config is checked.
        from rlpipe.jobs.pbt_job import record_copies

        returns = []
        for r in range(ledger.rounds_done, spec.rounds):
            batch = [
                _member_overrides(given, spec, ledger, i, r, root, int(cfg.seed))
                for i in range(spec.population)
            ]
            results = self.launcher.launch(batch, initial_job_idx=r * spec.population)
            returns.append(results)
            scores = [_score(res.return_value) for res in results]
            _check_saved(root, spec, r, scores)
            ledger.scores.append(scores)
            if r < spec.rounds - 1:
                t0 = time.perf_counter()
                copies = exploit_explore(spec, r, scores, ledger.hyper)
                for c in copies:
                    copy_state(root, c.source, c.member)
                    ledger.hyper[c.member] = c.hyper
                    ledger.copies.append(asdict(c))
                    log.info("PBT member %d %s", c.member, c.text(str(cfg.gates.select_metric)))
                record_copies(group(cfg.tracking), root, copies, str(cfg.gates.select_metric))
                ledger.between_s.append(time.perf_counter() - t0)
            ledger.rounds_done = r + 1
            ledger.save(root)
        return returns


def initial_hyper(spec: PBTSpec, cfg: DictConfig) -> list[dict[str, float]]:
    """Member 0 starts from the config's values, the others from values spread by +/- `perturb`."""
    base = {}
    for key in spec.mutate:
        value = OmegaConf.select(cfg, key, default=None)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(
                f"pbt.mutate: {key}={value!r} is not a number in this config; name numeric keys"
            )
        base[key] = value
    rng = np.random.default_rng([spec.seed, 1_000_003])
    spread = [base] + [
        {k: scaled(v, 1 + spec.perturb * rng.uniform(-1, 1)) for k, v in base.items()}
        for _ in range(spec.population - 1)
    ]
    return spread


def _check_arguments(arguments: list[str], ctx: HydraContext, spec: PBTSpec) -> list[str]:
    """The command line's overrides less those the sweeper sets; a sweep of values is refused."""
    parser = OverridesParser.create(config_loader=ctx.config_loader)
    kept = []
    for text, o in zip(arguments, parser.parse_overrides(arguments), strict=True):
        key = o.get_key_element()
        if o.is_sweep_override():
            raise ConfigError(
                f"experiment=pbt: {text} sweeps values; a population sweeps its members (pbt.population)"
            )
        if key.lstrip("+~") not in (*SET_BY_SWEEPER, *spec.mutate):
            kept.append(text)
    return kept


def _member_overrides(given: Sequence[str], spec: PBTSpec, ledger: Ledger, i: int, r: int, root: Path,
                      seed: int) -> list[str]:  # fmt: skip
    hyper = [f"{k}={v!r}" for k, v in ledger.hyper[i].items()]
    own = [f"seed={seed + i}", f"timesteps={spec.interval * (r + 1)}", f"pbt.member={i}", f"pbt.round={r}",
           f"pbt.dir={root}"]  # fmt: skip
    return [*given, *own, *hyper]


def _score(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _check_saved(root: Path, spec: PBTSpec, r: int, scores: list[float]) -> None:
    """Every member must have finished round r before the next: a failed one stops the population."""
    failed = [
        i for i in range(spec.population) if (m := member_folder(root, i).read()) is None or m.round < r
    ]
    if failed:
        raise CheckpointError(
            f"PBT round {r}: member(s) {failed} failed (their runs say why); fix the cause and rerun "
            f"the same command with resume=true to continue from round {r}"
        )
    if all(math.isnan(s) for s in scores):
        raise ConfigError("PBT ranks members on validation: declare validation slices (slices.*)")
