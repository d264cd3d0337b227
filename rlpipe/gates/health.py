"""Health of a deployed version: its paper (or live) record judged against what its test slices
led one to expect.

The expectation (`Expectation`) is the agent's equity curves on the version's test slices: their
per-bar simple returns (one array per slice), their mean per-bar return `mu`, and the worst max
drawdown of any test slice `DD_test`. The realised record is an equity curve from the start of the
session (any positive scale); `N` = its length - 1 bars. `judge` applies, with the defaults of
`HealthConfig` (conf/health/default.yaml):

1. drawdown: realised max drawdown > `drawdown_multiple` (1.5) x `DD_test` -> degraded, at any N
   (a loss that deep needs no more bars to be believed);
2. N < `min_bars` (168, a week of hourly bars) -> watch: too few bars to judge the mean;
3. mean: realised mean per-bar return < the lower end of the two-sided `confidence` (0.95)
   interval of the mean of N bars drawn like the test slices -> degraded. The interval comes from
   a moving-block bootstrap (`resamples` = 2000 draws of N bars in blocks of `block_bars` = 24
   consecutive bars, each block inside one test slice, seeded): per-bar returns are
   autocorrelated, so single-bar resampling would make the interval too narrow;
4. shortfall, the seeds' "performance degrades by more than 10%": realised equity more than
   `degrade_fraction` (0.10) below the equity the test slices' mean return compounds to over the
   same N bars, (1 + R_N) < (1 - 0.10) (1 + mu)^N -> watch. The 10% is of the account's value,
   not of the expected gain (an expected gain of a few percent is within noise of zero, and 10% of
   it would flag half of all healthy records). It is watch, not degraded: the noise of N bars
   grows like sqrt(N) while the 10% stays fixed, so on a volatile record it also fires on healthy
   records (about 1 in 15 after 500 hourly bars at 0.3% per bar); rule 3 is the calibrated test
   of the same question and rolls back;
5. realised max drawdown deeper than `DD_test` (within the limit of rule 1) -> watch;
6. otherwise healthy.

Every rule that fires adds a reason; the verdict is the worst of them. The figures (`Health.figures`)
are the numbers the rules compared, so a reader can see by how much. A healthy record crosses the
lower end of rule 3 with probability (1 - confidence) / 2 at any one check; judging a growing
record every bar raises that, which is why the verdict is recorded with its figures and a
rollback is a config choice (`registry.on_degraded`), not the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rlpipe.errors import ConfigError
from rlpipe.types import FloatArray

HEALTHY, WATCH, DEGRADED = "healthy", "watch", "degraded"
_RANK = {HEALTHY: 0, WATCH: 1, DEGRADED: 2}
_CHUNK = 1_000_000
"""Most block draws held in memory at once by the bootstrap (about 8 MB)."""


@dataclass
class HealthConfig:
    """The health rule's thresholds (config group `health`; the rule is in this module's docstring)."""

    min_bars: int = 168
    """Bars a record needs before any verdict but watch (degraded by drawdown excepted)."""
    resamples: int = 2000
    """Bootstrap draws of N bars from the test slices."""
    confidence: float = 0.95
    """Level of the two-sided bootstrap interval of the mean; its lower end is the bound."""
    block_bars: int = 24
    """Consecutive bars per bootstrap block (kept inside one test slice): per-bar returns are
    autocorrelated, blocks keep that."""
    drawdown_multiple: float = 1.5
    """Degraded when the realised max drawdown exceeds this multiple of the worst test drawdown."""
    degrade_fraction: float = 0.10
    """Watch when the realised equity falls more than this fraction below the equity the test
    slices' mean per-bar return compounds to over the same bars (the seeds' 10% rule)."""

    def __post_init__(self) -> None:
        if self.min_bars < 1 or self.resamples < 100 or self.block_bars < 1:
            raise ConfigError(
                f"health.min_bars={self.min_bars}, health.resamples={self.resamples}, "
                f"health.block_bars={self.block_bars}: need min_bars >= 1, resamples >= 100, block_bars >= 1"
            )
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"health.confidence={self.confidence}: must be in (0, 1), e.g. 0.95")
        if self.drawdown_multiple < 1.0:
            raise ConfigError(
                f"health.drawdown_multiple={self.drawdown_multiple}: must be >= 1 (1.5: half again the "
                "worst test drawdown)"
            )
        if not 0.0 < self.degrade_fraction < 1.0:
            raise ConfigError(f"health.degrade_fraction={self.degrade_fraction}: must be in (0, 1), e.g. 0.1")


def _returns(equity: FloatArray) -> FloatArray:
    """Simple per-bar returns (as `rlpipe.evaluation.metrics.returns`; gates sit below evaluation)."""
    e = np.asarray(equity, dtype=float)
    return e[1:] / e[:-1] - 1.0


def _max_drawdown(equity: FloatArray) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak (as
    `rlpipe.evaluation.metrics.max_drawdown`); 0 for a single bar."""
    e = np.asarray(equity, dtype=float)
    return float(np.max(1.0 - e / np.maximum.accumulate(e))) if e.size else 0.0


@dataclass(frozen=True)
class Expectation:
    """What a version's test slices lead one to expect of its record."""

    slices: tuple[FloatArray, ...] = field(repr=False)
    """Per-bar simple returns of the agent on each test slice, in slice order."""
    worst_drawdown: float
    """The largest max drawdown of any test slice (positive fraction)."""
    bars_per_year: float
    """Bars per year of the version's data (annualises the figures)."""

    @classmethod
    def from_curves(cls, curves: Sequence[FloatArray], bars_per_year: float) -> Expectation:
        """The expectation of the agent's equity curves on the test slices (one array per slice)."""
        kept = [np.asarray(c, dtype=float) for c in curves if len(c) > 1]
        if not kept:
            raise ValueError("no test slice curve with two or more bars: nothing to expect")
        worst = max(_max_drawdown(c) for c in kept)
        return cls(tuple(_returns(c) for c in kept), worst, float(bars_per_year))

    @property
    def returns(self) -> FloatArray:
        """Every test bar's return, the slices concatenated."""
        return np.concatenate(self.slices)

    @property
    def mean_return(self) -> float:
        """Mean per-bar return over every test bar."""
        return float(np.mean(self.returns))


@dataclass(frozen=True)
class Health:
    """A record's verdict (healthy, watch, degraded), its length, the figures compared, and why."""

    verdict: str
    bars: int
    figures: dict[str, float]
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def bootstrap_means(expect: Expectation, n: int, cfg: HealthConfig, seed: int) -> FloatArray:
    """`cfg.resamples` means of n bars drawn from the test slices in blocks of `cfg.block_bars`
    consecutive bars, each block inside one slice (a shorter block where no slice is long enough)."""
    block = min(cfg.block_bars, max(len(s) for s in expect.slices))
    offsets = np.cumsum([0, *(len(s) for s in expect.slices)])
    fits = [(off, len(s)) for off, s in zip(offsets, expect.slices, strict=False) if len(s) >= block]
    starts = np.concatenate([off + np.arange(size - block + 1) for off, size in fits])
    sums = np.concatenate([[0.0], np.cumsum(expect.returns)])
    whole, rest = divmod(n, block)
    rng = np.random.default_rng(seed)
    totals = np.zeros(cfg.resamples)
    step = max(1, _CHUNK // max(whole, 1))
    for lo in range(0, cfg.resamples, step):
        hi = min(lo + step, cfg.resamples)
        if whole:
            picks = rng.choice(starts, size=(hi - lo, whole))
            totals[lo:hi] += (sums[picks + block] - sums[picks]).sum(axis=1)
        if rest:
            picks = rng.choice(starts, size=hi - lo)
            totals[lo:hi] += sums[picks + rest] - sums[picks]
    return totals / n


def _check_record(equity: FloatArray) -> FloatArray:
    e = np.asarray(equity, dtype=float)
    if e.ndim != 1 or e.size < 1 or not np.all(np.isfinite(e)) or np.any(e <= 0):
        raise ValueError("realised equity must be a 1-D array of positive finite values, from the start")
    return e


def judge(expect: Expectation, realised_equity: FloatArray, cfg: HealthConfig, seed: int) -> Health:
    """The record's health by the rule of the module docstring; the same inputs and seed give the
    same figures."""
    e = _check_record(realised_equity)
    n = e.size - 1
    mu = expect.mean_return
    fig = {
        "bars": float(n),
        "test_bars": float(expect.returns.size),
        "expected_mean": mu,
        "realised_mean": float(np.mean(_returns(e))) if n else math.nan,
        "mean_lower_bound": math.nan,
        "expected_total": float((1.0 + mu) ** n - 1.0),
        "realised_total": float(e[-1] / e[0] - 1.0),
        "realised_drawdown": _max_drawdown(e),
        "worst_test_drawdown": expect.worst_drawdown,
        "drawdown_limit": cfg.drawdown_multiple * expect.worst_drawdown,
    }
    fig["shortfall"] = 1.0 - (1.0 + fig["realised_total"]) / (1.0 + fig["expected_total"])
    fig["expected_annual_mean"] = mu * expect.bars_per_year
    fig["realised_annual_mean"] = fig["realised_mean"] * expect.bars_per_year
    if n:
        lower = (1.0 - cfg.confidence) / 2.0
        fig["mean_lower_bound"] = float(np.quantile(bootstrap_means(expect, n, cfg, seed), lower))
    found = _rules(fig, n, cfg)
    verdict = max((v for v, _ in found), key=_RANK.__getitem__, default=HEALTHY)
    reasons = tuple(r for _, r in found) or (
        f"within expectation after {n} bars: mean {fig['realised_mean']:.3g} >= bound "
        f"{fig['mean_lower_bound']:.3g}, shortfall {fig['shortfall']:.1%}, drawdown "
        f"{fig['realised_drawdown']:.1%} <= worst test {expect.worst_drawdown:.1%}",
    )
    return Health(verdict, n, fig, reasons)


def _rules(fig: dict[str, float], n: int, cfg: HealthConfig) -> list[tuple[str, str]]:
    """(verdict, reason) of every rule that fires, in the docstring's order."""
    found: list[tuple[str, str]] = []
    dd, worst, limit = fig["realised_drawdown"], fig["worst_test_drawdown"], fig["drawdown_limit"]
    if dd > limit:
        found.append(
            (DEGRADED, f"drawdown {dd:.1%} > {cfg.drawdown_multiple} x worst test drawdown {worst:.1%}")
        )
    if n < cfg.min_bars:
        found.append((WATCH, f"{n} bar(s) < health.min_bars={cfg.min_bars}: too few to judge the mean"))
        return found
    if fig["realised_mean"] < fig["mean_lower_bound"]:
        found.append(
            (
                DEGRADED,
                f"mean per-bar return {fig['realised_mean']:.3g} < {cfg.confidence:.0%} bootstrap lower "
                f"bound {fig['mean_lower_bound']:.3g} of the test slices over {n} bars",
            )
        )
    if fig["shortfall"] > cfg.degrade_fraction:
        found.append(
            (
                WATCH,
                f"equity {fig['shortfall']:.1%} below what the test slices' mean return compounds to "
                f"over {n} bars (> {cfg.degrade_fraction:.0%})",
            )
        )
    if worst < dd <= limit:
        found.append((WATCH, f"drawdown {dd:.1%} deeper than the worst test slice's {worst:.1%}"))
    return found
