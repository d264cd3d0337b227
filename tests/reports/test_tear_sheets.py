"""Tear sheets drawn from a run's records (report.json + curves parquet) are the ones the job would have
drawn from its own results: same slices, metrics, curves, pixels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from rlpipe.evaluation.backtest import curves_frame
from rlpipe.gates.rules import GatesConfig
from rlpipe.gates.selection import LengthPoint, select_length
from rlpipe.reports.plots import length_plot, slice_plots
from rlpipe.reports.run_report import ModelCard, RunReportInput, build_report
from rlpipe.reports.tear_sheets import draw, length_choice, slice_results
from tests.support.backtests import judged

HOURLY = 365.25 * 24


def recorded(tmp_path: Path, with_length: bool = False):
    """The three-role run as a job records it: its results, report.json (through JSON) and parquet."""
    results, aggs, gates, verdict, reason = judged(GatesConfig())
    length = None
    if with_length:
        points = [LengthPoint(100, 128, 0.4), LengthPoint(200, 256, 0.9), LengthPoint(300, 384, float("nan"))]
        length = select_length(points, 0.05, "sharpe_mean")
    card = ModelCard("rlpipe-policy", seed=7, timesteps=300)
    _, js = build_report(RunReportInput(card, results, aggs, gates, verdict, reason, {}, length))
    path = tmp_path / "equity.parquet"
    curves_frame(results).to_parquet(path)
    return results, json.loads(json.dumps(js)), pd.read_parquet(path), length


def test_results_rebuilt_from_the_records_equal_the_jobs_results(tmp_path: Path) -> None:
    results, report, curves, _ = recorded(tmp_path)
    rebuilt = slice_results(curves, report["slices"], HOURLY)
    assert [(r.slice, r.role, r.regime, r.policy) for r in rebuilt] == [
        (r.slice, r.role, r.regime, r.policy) for r in results
    ]
    for old, new in zip(results, rebuilt, strict=True):
        np.testing.assert_array_equal(new.equity, old.equity)
        np.testing.assert_array_equal(new.fees, old.fees)
        np.testing.assert_array_equal(new.turnover, old.turnover)
        assert old.time is not None and new.time is not None and (new.time == old.time).all()
        finite = {k: v for k, v in old.metrics.items() if math.isfinite(v)}
        assert {k: new.metrics[k] for k in finite} == finite
        assert all(math.isnan(new.metrics[k]) for k in old.metrics if k not in finite)  # JSON null -> NaN
        assert (new.start, new.end, new.bars_per_year) == (old.start, old.end, HOURLY)


def test_drawn_from_the_records_the_tear_sheets_have_the_pixels_of_the_inline_ones(tmp_path: Path) -> None:
    results, report, curves, length = recorded(tmp_path, with_length=True)
    for r in results:
        r.bars_per_year = HOURLY  # the job's results carry the market's factor, as the run's metric does
    inline = slice_plots(results, tmp_path / "inline")
    assert length is not None
    inline.append(length_plot(length, tmp_path / "inline" / "training_length.png"))
    later = draw(curves, report, HOURLY, tmp_path / "later")
    assert [p.name for p in later] == [p.name for p in inline] and len(later) == 5  # 4 slices + length
    for a, b in zip(inline, later, strict=True):
        np.testing.assert_array_equal(imread(a), imread(b))


def test_a_run_without_checkpoints_has_no_length_plot_and_a_missing_curve_is_named(tmp_path: Path) -> None:
    _, report, curves, _ = recorded(tmp_path)
    assert length_choice(report) is None
    assert [p.name for p in draw(curves, report, HOURLY, tmp_path / "out")] == [
        "train_train_1.png", "validation_val_1.png", "test_test_1.png", "test_test_2.png",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="no curve for slice 'test_2', policy 'agent'"):
        slice_results(curves[curves["slice"] != "test_2"], report["slices"], HOURLY)


def test_the_length_choice_comes_back_with_its_kept_point_and_nan_score(tmp_path: Path) -> None:
    _, report, _, length = recorded(tmp_path, with_length=True)
    back = length_choice(report)
    assert back is not None and length is not None
    assert back.selected == length.selected and back.reason == length.reason and back.metric == length.metric
    assert [p.timesteps for p in back.points] == [100, 200, 300] and math.isnan(back.points[-1].score)
