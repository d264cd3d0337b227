"""Plots written as PNG files: one per slice of a run, one scatter per sweep."""

from __future__ import annotations

from pathlib import Path

from rlpipe.gates.rules import PROMOTE, REJECT, RETEST
from rlpipe.reports.plots import slice_plots, sweep_plot
from tests.test_reports_run_report import three_role_run
from tests.test_reports_sweep_report import LABEL_A, LABEL_B, job_row

PNG = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000
    assert data[:8] == PNG


def test_slice_plots_writes_one_png_per_slice(tmp_path: Path) -> None:
    results, windows = three_role_run()
    paths = slice_plots(results, tmp_path / "plots")
    expected = [tmp_path / "plots" / f"{w.slice.role}_{w.slice.name}.png" for w in windows]
    assert paths == expected
    for p in paths:
        assert_png(p)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(p.name for p in expected)


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


def test_sweep_plot_of_several_configurations_with_a_failed_run_writes_a_png(tmp_path: Path) -> None:
    rows = [
        job_row("a-1", seed=1, test={"total": 0.1, "max_drawdown": 0.05}),
        job_row("a-2", seed=2, test={"total": 0.2, "max_drawdown": 0.04}),
        job_row("b-1", seed=1, config_hash="b", label=LABEL_B, test={"total": -0.1, "max_drawdown": 0.2}),
        job_row("c-1", seed=1, config_hash="c", label=LABEL_A, test={"total": 0.05, "max_drawdown": 0.1}),
        job_row("b-2", seed=2, config_hash="b", label=LABEL_B, status="FAILED", verdict="failed"),
    ]
    # the failed run has no sweep verdict and no test metrics: it is left out, not drawn at NaN
    verdicts = {"a-1": PROMOTE, "a-2": PROMOTE, "b-1": REJECT, "c-1": RETEST}
    path = tmp_path / "sweep.png"
    assert sweep_plot(rows, verdicts, None, path) == path  # no champion
    assert_png(path)
