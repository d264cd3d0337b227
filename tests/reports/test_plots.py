"""Plots written as PNG files: one tear sheet per slice of a run, one scatter per sweep."""

from __future__ import annotations

from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.legend import Legend

from rlpipe.evaluation import metrics as mx
from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.evaluation.metrics import sharpe_window
from rlpipe.gates.rules import PROMOTE, REJECT, RETEST
from rlpipe.reports.format import pct
from rlpipe.reports.plots import SWEEP_COLORS, SliceFigure, slice_plots, sweep_plot
from tests.support.backtests import three_role_run
from tests.support.records import LABEL_A, LABEL_B, job_row

PNG = b"\x89PNG\r\n\x1a\n"
HOURLY = 365.25 * 24


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG


def slice_rows(results: list[SliceResult], name: str) -> dict[str, SliceResult]:
    return {r.policy: r for r in results if r.slice == name}


def test_slice_plots_writes_one_png_per_slice(tmp_path: Path) -> None:
    results, windows = three_role_run()
    paths = slice_plots(results, tmp_path / "plots")
    expected = [tmp_path / "plots" / f"{w.slice.role}_{w.slice.name}.png" for w in windows]
    assert paths == expected
    for p in paths:
        assert_png(p)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in expected)


def test_slice_figure_puts_the_slice_on_a_date_axis_with_buy_and_hold_drawdown_sharpe_and_fees() -> None:
    results, _ = three_role_run()
    rows = slice_rows(results, "test_2")
    agent, hold = rows[AGENT], rows["buy_and_hold"]
    assert agent.time is not None
    figure = SliceFigure(list(rows), dated=True)
    try:
        figure.draw(rows)
        ax = figure.axes
        bottom = ax["turn"].xaxis
        assert isinstance(bottom.get_major_formatter(), mdates.ConciseDateFormatter)
        assert isinstance(bottom.get_major_locator(), mdates.AutoDateLocator)
        dates = mdates.date2num(agent.time.tz_localize(None).to_numpy())
        for panel in ax.values():  # every panel spans exactly the slice's first to last bar
            assert panel.get_xlim() == pytest.approx((dates[0], dates[-1]))
        assert mdates.num2date(dates[0]).isoformat() == agent.time[0].isoformat()
        np.testing.assert_array_equal(figure.lines["eq", AGENT].get_xdata(), dates)
        np.testing.assert_array_equal(figure.lines["eq", "buy_and_hold"].get_ydata(), hold.equity)
        np.testing.assert_array_equal(
            figure.lines["dd", "buy_and_hold"].get_ydata(), mx.drawdown_curve(hold.equity)
        )
        np.testing.assert_array_equal(figure.lines["fee", AGENT].get_ydata(), agent.fees)
        np.testing.assert_array_equal(figure.lines["turn", AGENT].get_ydata(), agent.turnover)
        labels = [t.get_text() for t in ax["eq"].get_legend().get_texts()]
        total, drawdown = pct(agent.metrics["total"]), pct(-agent.metrics["max_drawdown"] or 0.0)
        assert f"agent: total after fees {total}, max drawdown {drawdown}" in labels
        assert any(label.startswith("buy & hold: total after fees ") for label in labels)
        title = figure.fig.texts[0].get_text()
        assert title == "test_2: test slice, bear regime (2021-01-01 22:00 to 2021-01-02 05:00 UTC, 8 bars)"
        window = sharpe_window(8, agent.bars_per_year)
        assert figure.sharpe_note.get_text().startswith(f"agent, annualised, over the last {window} bars")
        assert len(figure.lines["sr", AGENT].get_ydata()) == 8 - window
    finally:
        figure.close()


def test_slice_figure_without_bar_times_counts_bars() -> None:
    results, _ = three_role_run()
    rows = {
        p: SliceResult(r.slice, r.role, r.regime, p, r.metrics, r.equity)
        for p, r in slice_rows(results, "test_1").items()
    }
    figure = SliceFigure(list(rows), dated=False)
    try:
        figure.draw(rows)
        assert figure.axes["turn"].get_xlabel() == "bar"
        assert figure.axes["eq"].get_xlim() == (0, 6)
        assert len(figure.lines["fee", AGENT].get_xdata()) == 0  # a hand-made result has no fee curve
    finally:
        figure.close()


def test_sweep_plot_of_one_configuration_writes_a_png(tmp_path: Path) -> None:
    rows = [
        job_row(f"a-{s}", seed=s, test={"total": t, "max_drawdown": dd})
        for s, t, dd in ((1, 0.1, 0.05), (2, 0.3, 0.02), (3, -0.05, 0.12))
    ]
    verdicts = {r.run_id: PROMOTE for r in rows}
    path = tmp_path / "sweep.png"
    assert sweep_plot(rows, verdicts, "a-2", path) == path
    assert_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]


def test_sweep_plot_of_several_configurations_draws_each_judged_run_and_leaves_the_failed_one_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        job_row("a-1", seed=1, test={"total": 0.1, "max_drawdown": 0.05}),
        job_row("a-2", seed=2, test={"total": 0.2, "max_drawdown": 0.04}),
        job_row("b-1", seed=1, config_hash="b", label=LABEL_B, test={"total": -0.1, "max_drawdown": 0.2}),
        job_row("c-1", seed=1, config_hash="c", label=LABEL_A, test={"total": 0.05, "max_drawdown": 0.1}),
        job_row("b-2", seed=2, config_hash="b", label=LABEL_B, status="FAILED", verdict="failed"),
    ]
    # the failed run has no sweep verdict and no test metrics: it is left out, not drawn at NaN
    verdicts = {"a-1": PROMOTE, "a-2": PROMOTE, "b-1": REJECT, "c-1": RETEST}
    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(fig: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(fig)  # the figure the PNG is drawn from, to read what is on it
        save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    path = tmp_path / "sweep.png"
    assert sweep_plot(rows, verdicts, None, path) == path  # no champion
    assert_png(path)
    (ax,) = drawn[0].axes
    # one point per judged run at (worst drawdown, test total), coloured by its configuration's verdict
    points = [(tuple(c.get_offsets()[0]), to_hex(c.get_facecolor()[0])) for c in ax.collections]
    colour = {v: to_hex(SWEEP_COLORS[v]) for v in (PROMOTE, REJECT, RETEST)}
    assert points == [
        ((0.05, 0.1), colour[PROMOTE]),
        ((0.04, 0.2), colour[PROMOTE]),
        ((0.2, -0.1), colour[REJECT]),
        ((0.1, 0.05), colour[RETEST]),
    ]
    assert [t.get_text() for t in ax.texts] == ["seed 1", "seed 2", "seed 1", "seed 1"]
    # one marker per configuration: a's two seeds share one, b and c each have their own
    shapes = [c.get_paths()[0].vertices.tobytes() for c in ax.collections]
    assert shapes[0] == shapes[1] and len({shapes[0], shapes[2], shapes[3]}) == 3
    assert ax.get_title() == "Sweep: 4 judged run(s) in 3 configuration(s); colour = configuration verdict"
    # two configurations share a label (other keys differ): every configuration is named with its hash
    configurations = [t.get_text() for t in ax.get_legend().get_texts()]
    assert configurations == [f"{LABEL_A} (a)", f"{LABEL_B} (b)", f"{LABEL_A} (c)"]
    legends = [a for a in ax.artists if isinstance(a, Legend)]
    verdict_counts = [t.get_text() for t in legends[0].get_texts()]
    assert verdict_counts == ["promote (2)", "retest (1)", "reject (1)", "unpicked (0)"]  # no champion
