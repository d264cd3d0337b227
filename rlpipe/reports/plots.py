"""Per-slice tear sheets (equity, underwater, rolling Sharpe, fees), the training-length curve and the
sweep scatter, as PNG files."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator, PercentFormatter

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.evaluation.metrics import drawdown_curve, rolling_sharpe, sharpe_window
from rlpipe.gates.selection import LengthChoice
from rlpipe.reports.format import pct
from rlpipe.tracking.rows import JobRow
from rlpipe.types import FloatArray

COLORS = {AGENT: "C0", "buy_and_hold": "C1", "flat": "C7", "random": "C2"}
NAMES = {AGENT: "agent", "buy_and_hold": "buy & hold", "flat": "flat", "random": "random"}


class SliceFigure:
    """One five-panel figure redrawn for every slice: building and laying out a figure per slice
    cost more than the whole backtest, so the lines are created once and their data replaced.

    Panels over the same dates (bar numbers when the results carry no timestamps): equity of
    every policy (agent bold, buy-and-hold solid, the others light); underwater drawdown (%) of
    the agent and buy-and-hold; the agent's rolling Sharpe against its whole-slice Sharpe; fees
    paid so far (% of the starting capital); notional traded so far (turnover, x capital).
    """

    def __init__(self, policies: Sequence[str], dated: bool) -> None:
        self.fig, axes = plt.subplots(5, 1, figsize=(10, 10.5), height_ratios=(3, 1.5, 1.5, 1.2, 1.2))
        self.fig.subplots_adjust(left=0.09, right=0.98, top=0.91, bottom=0.06, hspace=0.12)
        self.axes = dict(zip(("eq", "dd", "sr", "fee", "turn"), axes, strict=True))
        self.dated = dated
        self.lines: dict[tuple[str, str], Line2D] = {}
        for p in policies:
            main = p in (AGENT, "buy_and_hold")
            style = {"color": COLORS.get(p, "C4"), "lw": 1.8 if p == AGENT else 1.1 if main else 0.8}
            style |= {"alpha": 1.0 if main else 0.55, "label": NAMES.get(p, p)}
            for panel in ("eq", "dd", "fee", "turn") if main else ("eq",):
                self.lines[panel, p] = self.axes[panel].plot([], [], **style)[0]
        sr = self.axes["sr"]
        self.lines["sr", AGENT] = sr.plot([], [], color=COLORS[AGENT], lw=1.2, label="agent, rolling")[0]
        self.sharpe_ref = sr.axhline(0, color=COLORS[AGENT], ls=":", lw=1.2, label="agent, whole slice")
        note_box = {"facecolor": "white", "alpha": 0.7, "linewidth": 0}
        self.sharpe_note = sr.text(
            0.005, 0.96, "", transform=sr.transAxes, va="top", fontsize=7, bbox=note_box
        )
        self.title = self.fig.suptitle("", x=0.09, y=0.985, ha="left", fontsize=11)
        self.fill = self.axes["dd"].fill_between([], [], color=COLORS[AGENT], alpha=0.25)
        self._label_axes()

    def _label_axes(self) -> None:
        ax = self.axes
        ax["eq"].axhline(1.0, color="grey", lw=0.6)
        ax["sr"].axhline(0, color="grey", lw=0.6)
        labels = {"eq": "equity (start = 1)", "dd": "drawdown", "sr": "rolling Sharpe", "fee": "fees paid"}
        labels["turn"] = "turnover\n(x capital)"
        for name, text in labels.items():
            ax[name].set_ylabel(text)
        ax["dd"].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        ax["fee"].yaxis.set_major_formatter(PercentFormatter(1.0, decimals=2))
        for name, a in ax.items():
            a.grid(True, alpha=0.3)
            if name != "eq":
                a.yaxis.set_major_locator(MaxNLocator(4))
            if name != "turn":
                a.tick_params(labelbottom=False)  # one date scale, at the bottom
        if self.dated:
            locator = mdates.AutoDateLocator()
            ax["turn"].xaxis.set_major_locator(locator)
            ax["turn"].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz="UTC"))
        ax["turn"].set_xlabel("date (UTC)" if self.dated else "bar")

    def draw(self, rows: dict[str, SliceResult]) -> None:
        """Show one slice: `rows` maps each policy to its result on that slice."""
        first = rows.get(AGENT) or next(iter(rows.values()))
        x = self._x(first)
        for (panel, p), line in self.lines.items():
            r = rows.get(p)
            y = None if r is None else self._y(panel, r)
            line.set_data(x[len(x) - len(y) :] if y is not None else [], y if y is not None else [])
            if panel == "eq":
                line.set_label(self._legend(p, r))
        agent = rows.get(AGENT)
        self.fill.remove()
        dd = drawdown_curve(agent.equity) if agent else np.zeros(0)
        self.fill = self.axes["dd"].fill_between(x[: len(dd)], dd, 0, color=COLORS[AGENT], alpha=0.25, lw=0)
        window = sharpe_window(len(first.equity), first.bars_per_year)
        days, whole = window / first.bars_per_year * 365.25, agent.metrics["sharpe"] if agent else math.nan
        self.sharpe_note.set_text(
            f"agent, annualised, over the last {window} bars ({days:.1f} days); "
            f"dotted: the whole slice ({whole:.2f})"
        )
        self.sharpe_ref.set_ydata([whole, whole])
        for ax in self.axes.values():
            ax.relim()
            ax.autoscale_view(scalex=False)
            ax.set_xlim(x[0], x[-1])
        ticks = FixedLocator(self.axes["turn"].get_xticks())  # the bottom axis's, computed once
        for name in ("eq", "dd", "sr", "fee"):
            self.axes[name].xaxis.set_major_locator(ticks)
        self.axes["eq"].legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, fontsize=8, frameon=False)
        self.title.set_text(_title(first))

    def _x(self, r: SliceResult) -> FloatArray:
        if self.dated and r.time is not None:
            return np.asarray(mdates.date2num(r.time.tz_localize(None).to_numpy()), float)  # UTC
        return np.arange(len(r.equity), dtype=float)

    @staticmethod
    def _y(panel: str, r: SliceResult) -> FloatArray | None:
        if panel == "eq":
            return r.equity
        if panel == "dd":
            return drawdown_curve(r.equity)
        if panel == "sr":
            return rolling_sharpe(r.equity, sharpe_window(len(r.equity), r.bars_per_year), r.bars_per_year)
        curve = r.fees if panel == "fee" else r.turnover  # absent on hand-made results
        return curve if len(curve) == len(r.equity) else None

    @staticmethod
    def _legend(policy: str, r: SliceResult | None) -> str:
        if r is None:
            return f"_{policy}"  # a leading underscore keeps it out of the legend
        total, drawdown = pct(r.metrics["total"]), pct(-r.metrics["max_drawdown"] or 0.0)
        return f"{NAMES.get(policy, policy)}: total after fees {total}, max drawdown {drawdown}"

    def save(self, path: Path) -> Path:
        self.fig.savefig(path, dpi=72)
        return path

    def close(self) -> None:
        plt.close(self.fig)


def _title(r: SliceResult) -> str:
    span = f"{len(r.equity)} bars"
    if r.time is not None and len(r.time):
        span = f"{r.time[0]:%Y-%m-%d %H:%M} to {r.time[-1]:%Y-%m-%d %H:%M} UTC, {span}"
    return f"{r.slice}: {r.role} slice, {r.regime} regime ({span})"


def slice_plots(results: Sequence[SliceResult], outdir: Path) -> list[Path]:
    """One PNG per slice, `<role>_<slice>.png`: the `SliceFigure` panels for that slice."""
    outdir.mkdir(parents=True, exist_ok=True)
    by_slice: dict[str, dict[str, SliceResult]] = {}
    for r in results:
        by_slice.setdefault(r.slice, {})[r.policy] = r
    dated = all(r.time is not None for r in results)
    figure = SliceFigure(list(dict.fromkeys(r.policy for r in results)), dated)
    try:
        paths = []
        for name, rows in by_slice.items():
            figure.draw(rows)
            paths.append(figure.save(outdir / f"{next(iter(rows.values())).role}_{name}.png"))
    finally:
        figure.close()
    return paths


def sweep_plot(
    rows: Sequence[JobRow], verdicts: dict[str, str], champion_run: str | None, path: Path
) -> Path:
    """Test total vs worst test drawdown for every judged run of a sweep.

    Colour: the configuration's sweep verdict; marker: the configuration (legend: its label);
    each point is labelled with its seed; the champion is ringed. Runs without a sweep verdict
    (failed ones) are left out.
    """
    judged = [r for r in rows if r.run_id in verdicts]
    configs = {r.config_hash: r.label or r.config_hash for r in judged}
    if len(set(configs.values())) < len(configs):  # same label, other keys differ: show the hash
        configs = {h: f"{label} ({h[:8]})" for h, label in configs.items()}
    markers = dict(zip(configs, "osD^vP*Xhp<>" * (1 + len(configs) // 12), strict=False))
    fig, ax = plt.subplots(figsize=(9, 5.5))
    fig.subplots_adjust(left=0.1, right=0.97, top=0.9, bottom=0.11)
    try:
        for r in judged:
            x, y = _sweep_xy(r)
            color = SWEEP_COLORS.get(verdicts[r.run_id], "C7")
            ax.scatter(x, y, c=color, marker=markers[r.config_hash], s=50, alpha=0.85, edgecolors="none")
            ax.annotate(f"seed {r.seed}", (x, y), fontsize=7, xytext=(5, 4), textcoords="offset points")
            if r.run_id == champion_run:
                ax.scatter(x, y, s=300, facecolors="none", edgecolors="k", linewidths=1.2)
        ax.axhline(0, color="grey", lw=0.8)
        ax.margins(0.15)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("worst max drawdown over the test slices (lower is better)")
        ax.set_ylabel("test total after fees (sum over the test slices)")
        ax.set_title(
            f"Sweep: {len(judged)} judged run(s) in {len(configs)} configuration(s); "
            "colour = configuration verdict",
            fontsize=10,
        )
        ax.grid(True, alpha=0.3)
        _sweep_legends(ax, judged, verdicts, configs, markers, champion_run)
        fig.savefig(path, dpi=80)
    finally:
        plt.close(fig)
    return path


SWEEP_COLORS = {"promote": "C2", "retest": "C1", "reject": "C3", "unpicked": "C7"}


def _sweep_xy(r: JobRow) -> tuple[float, float]:
    return r.test_metric("max_drawdown"), r.test_metric("total")


def _sweep_legends(
    ax: Axes,
    judged: Sequence[JobRow],
    verdicts: dict[str, str],
    configs: dict[str, str],
    markers: dict[str, str],
    champion_run: str | None,
) -> None:
    """Two legends: the verdict colours (with run counts) and the configuration markers."""
    counts = Counter(verdicts[r.run_id] for r in judged)
    handles = [
        Line2D([], [], ls="", marker="o", color=color, label=f"{verdict} ({counts[verdict]})")
        for verdict, color in SWEEP_COLORS.items()
    ]
    if champion_run in {r.run_id for r in judged}:
        handles.append(Line2D([], [], ls="", marker="o", ms=14, mfc="none", mec="k", label="champion"))
    ax.add_artist(ax.legend(handles=handles, title="verdict (runs)", loc="upper right", fontsize=8))
    shapes = [Line2D([], [], ls="", marker=markers[h], color="k", label=name) for h, name in configs.items()]
    ax.legend(handles=shapes, title="configuration", loc="lower left", fontsize=7, title_fontsize=8)


def length_plot(choice: LengthChoice, path: Path) -> Path:
    """The validation score against the training length, the kept checkpoint marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = [p.timesteps for p in choice.points]
    ax.plot(xs, [p.score for p in choice.points], marker="o", color="tab:blue", label="checkpoint")
    ax.scatter([choice.selected.timesteps], [choice.selected.score], s=120, facecolors="none",
               edgecolors="tab:red", linewidths=2, label="kept", zorder=3)  # fmt: skip
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"validation {choice.metric}")
    ax.set_title("Training length chosen on validation")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
