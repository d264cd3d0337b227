"""The gate table of a sweep: run and configuration gates as "Y (0.80 > 0.50)" cells, on a real smoke
sweep (2 seeds x 2 reward specs through the CLI) and on sweep reports made by hand; a gate that had
nothing to judge (PBO with one configuration, or too few bars) reads n/a."""

from __future__ import annotations

import math
import re

import numpy as np
from omegaconf import OmegaConf

from rlpipe.gates.rules import GatesConfig
from rlpipe.gates.sweep_gates import evaluate_sweep
from rlpipe.reports import gate_table
from rlpipe.reports.sweep_report import sweep_report
from rlpipe.tracking import notebook_reads
from tests.support.project import CONF
from tests.support.records import record

EXPERIMENT = "rlpipe"
GATE_CELL = re.compile(r"^([YN] \((\S+) ([<=>]|vs) (\S+)\)|n/a)$")
"""A recorded gate cell: Y or N, then the value judged against the threshold; n/a when it judged nothing."""


def test_gate_text_shows_the_outcome_then_the_value_against_the_threshold():
    assert gate_table.gate_text(True, 0.8, 0.5) == "Y (0.80 > 0.50)"
    assert gate_table.gate_text(False, 0.2345, 0.15) == "N (0.23 > 0.15)"
    assert gate_table.gate_text(1.0, 0.5, 0.5) == "Y (0.50 = 0.50)"  # a gate/<name> metric is 0/1
    assert gate_table.gate_text(0.0, 0.0042, 0.15) == "N (0.0042 < 0.15)"  # two digits under 0.01
    assert gate_table.gate_text(False, None, 0.5) == "N (n/a vs 0.50)"  # a missing value fails
    assert gate_table.gate_text(False, math.nan, 0.5) == "N (n/a vs 0.50)"
    assert gate_table.gate_text(True) == "Y"  # recorded without its value
    assert gate_table.gate_text(None, 0.8, 0.5) == gate_table.gate_text(math.nan, 0.8, 0.5) == "-"


def test_gate_frame_shows_run_and_configuration_gates_as_yes_no_with_their_values(
    smoke_sweep_ids, smoke_runs
):
    uri, sweep_id, _ = smoke_sweep_ids
    gates = gate_table.gate_frame(notebook_reads.gate_records(uri, EXPERIMENT, sweep_id))
    assert len(gates) == 4 and set(gates["run_id"]) == set(smoke_runs["run_id"])
    run_gates = {"pass_majority_slices", "drawdown_under_cap", "no_single_slice_dependency"}
    assert run_gates <= set(gates.attrs["run_gates"])
    assert {"seed_stability", "deflated_sharpe", "pbo"} <= set(gates.attrs["config_gates"])
    for col in gates.attrs["run_gates"] + gates.attrs["config_gates"]:
        assert all(GATE_CELL.match(c) and (c != "n/a" or col == "pbo") for c in gates[col]), (
            col,
            list(gates[col]),
        )
    # a run whose gates all passed is 'pass' (the sweep step decides); any N makes it 'reject'
    for _, row in gates.iterrows():
        passed = all(row[g].startswith("Y ") for g in gates.attrs["run_gates"])
        assert row["verdict"] == ("pass" if passed else "reject"), row["run_name"]
    # the configuration gates are the same for every seed of a configuration
    per_config = gates.groupby("config_hash")[gates.attrs["config_gates"] + ["sweep_verdict"]].nunique()
    assert (per_config == 1).all().all()
    by_run = smoke_runs.set_index("run_id")["sweep_verdict"]
    assert (gates.set_index("run_id")["sweep_verdict"] == by_run).all()


def test_gate_frame_values_are_the_test_aggregates_and_the_configured_thresholds(smoke_sweep_ids, smoke_runs):
    uri, sweep_id, _ = smoke_sweep_ids
    gates = gate_table.gate_frame(notebook_reads.gate_records(uri, EXPERIMENT, sweep_id)).set_index("run_id")
    cfg = OmegaConf.load(CONF / "gates" / "default.yaml")
    judged = {
        "pass_majority_slices": ("test_consistency", cfg.min_positive_fraction),
        "drawdown_under_cap": ("test_max_drawdown", cfg.max_drawdown_cap),
        "no_single_slice_dependency": ("test_best_slice_share", cfg.max_best_slice_share),
        "beats_buy_and_hold": ("test_beats_buy_and_hold", cfg.min_beats_buy_and_hold),
        "regime_coverage": ("test_regime_coverage", 1.0),
    }
    for run in smoke_runs.itertuples():
        for gate, (column, threshold) in judged.items():
            cell = gates.loc[run.run_id, gate]
            assert cell == gate_table.gate_text(cell[0] == "Y", getattr(run, column), threshold), (gate, cell)
    # the configuration gates: seed stability (fraction of seeds passing), DSR, sweep-wide PBO
    pbo = gates.attrs["pbo"]
    assert pbo is None or 0 <= pbo <= 1
    for config_hash, part in gates.groupby("config_hash"):
        passing = float(np.mean([v in ("pass", "retest") for v in part["verdict"]]))
        row = part.iloc[0]
        stable = row["seed_stability"]
        assert stable == gate_table.gate_text(stable[0] == "Y", passing, cfg.min_seed_pass_fraction), (
            config_hash
        )
        shown = gate_table.gate_text(row["pbo"][0] == "Y", pbo, cfg.max_pbo) if pbo is not None else "n/a"
        assert row["pbo"] == shown
        assert GATE_CELL.match(row["deflated_sharpe"]).group(4) == f"{cfg.min_deflated_sharpe:.2f}"


def _pbo_cell(runs) -> str:
    """The pbo cell of the first configuration of the sweep report over `runs`, as the table shows it."""
    _, data = sweep_report("sw", [], evaluate_sweep(runs, GatesConfig()), [])
    return gate_table.gate_cell(data["configurations"][0]["gates"]["pbo"])


def test_a_pbo_that_judged_nothing_reads_n_a_and_a_computed_one_its_value():
    one_configuration = [record("a", 1), record("a", 2)]
    too_few_bars = [record(c, s, n=10) for c in ("a", "b") for s in (1, 2)]  # 10 bars for 10 blocks
    assert _pbo_cell(one_configuration) == "n/a" and _pbo_cell(too_few_bars) == "n/a"
    assert re.fullmatch(
        r"[YN] \(\d\.\d\d [<=>] 0\.50\)", _pbo_cell([record(c, s) for c in "ab" for s in (1, 2)])
    )
    assert gate_table.gate_text(True, math.nan, 0.5, judged=False) == "n/a"
    assert gate_table.gate_text(None, judged=False) == "-"  # not recorded stays "-"


def test_a_sweep_report_written_before_judged_reads_its_not_applicable_pbo_as_n_a():
    legacy = {"passed": True, "value": None, "threshold": 0.5, "rule": "not applicable: one configuration"}
    assert gate_table.gate_cell(legacy) == "n/a"
    failed = {"passed": False, "value": None, "threshold": 0.95, "rule": "DSR ..."}
    assert gate_table.gate_cell(failed) == "N (n/a vs 0.95)"  # a missing value still fails
    assert gate_table.gate_cell({}, passed=1.0) == "Y"  # a gate/<name> metric without its report
