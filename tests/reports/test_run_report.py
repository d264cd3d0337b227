"""The run report on a hand-made three-role backtest: template, slice rows, gates, decision and JSON."""

from __future__ import annotations

import json

import pytest

from rlpipe.evaluation.backtest import AGENT, SliceResult
from rlpipe.gates.rules import PASS, REJECT, GateResult, GatesConfig
from rlpipe.reports.format import num, pct
from rlpipe.reports.run_report import ModelCard, RunReportInput, build_report
from rlpipe.types import JsonDict, Metrics
from tests.support.backtests import by, judged

COVERAGE_NOTE = "**Regime coverage:**"


# Helpers.


def report(
    model: JsonDict,
    results: list[SliceResult],
    aggs: dict[str, Metrics],
    gates: list[GateResult],
    verdict: str,
    reason: str,
    decisions: dict[str, str] | None = None,
) -> tuple[str, JsonDict]:
    card = ModelCard(**model)
    return build_report(RunReportInput(card, results, aggs, gates, verdict, reason, decisions or {}))


def row_of(md: str, slice_: str, regime: str) -> str:
    """The markdown table row of one slice of the agent."""
    (row,) = [line for line in md.splitlines() if line.startswith(f"| {slice_} | {regime} |")]
    return row


# The report.
def test_report_follows_the_template_and_its_json_has_no_nan() -> None:
    # two positive test slices of similar size: the best one carries > 0.5 of the total
    results, aggs, gates, verdict, reason = judged(
        GatesConfig(min_positive_fraction=0.5, max_drawdown_cap=0.15, max_best_slice_share=0.5)
    )
    model = {
        "name": "rlpipe-policy",
        "seed": 7,
        "timesteps": 20000,
        "env": "management",
        "reward": "pnl_fees",
    }
    md, data = report(model, results, aggs, gates, verdict, reason)

    assert md.startswith("# Run report: rlpipe-policy\n")
    assert "Model: name=rlpipe-policy, seed=7, timesteps=20000, env=management, reward=pnl_fees" in md
    for title in ("## Train slices", "## Validation slices", "## Test slices", "## Gates"):
        assert title in md
    assert md.index("## Train slices") < md.index("## Validation slices") < md.index("## Test slices")
    share = aggs["test"]["best_slice_share"]
    assert 0.5 < share < 0.6
    assert "- pass_majority_slices: Y (value 1.00; " in md
    assert "- drawdown_under_cap: Y (value 0.00; " in md
    assert f"- no_single_slice_dependency: N (value {num(share)}; " in md
    # the agent is buy-and-hold itself: it never beats it
    assert "- beats_buy_and_hold: N (value 0.00; " in md
    assert "- seed_stability: pending" in md
    assert verdict == REJECT == "reject"
    assert reason == "failed: no_single_slice_dependency, beats_buy_and_hold"
    assert md.endswith(f"## Decision: reject\n\n{reason}\n")
    assert COVERAGE_NOTE not in md  # every regime is covered
    assert "Classification:" not in md  # no decisions given

    # every agent row carries its numbers, each in its role's section
    for slice_, regime, role in (
        ("train_1", "bull", "train"),
        ("val_1", "sideways", "validation"),
        ("test_1", "bull", "test"),
        ("test_2", "bear", "test"),
    ):
        m = by(results, AGENT, slice_).metrics
        bh = by(results, "buy_and_hold", slice_).metrics["total"]
        cells = [c.strip() for c in row_of(md, slice_, regime).strip("|").split("|")]
        assert cells == [
            slice_,
            regime,
            f"{m['trades']:.0f}",
            f"{m['wins']:.0f}/{m['losses']:.0f}",
            pct(m["max_drawdown"], signed=False),
            pct(m["pnl_before_fees"]),
            pct(m["fees"]),
            pct(m["total"]),
            pct(m["total"] - bh),
            num(m["sharpe"]),
        ]
        assert cells[7] == f"{100 * m['total']:+.2f}%" and m["total"] > 0
        title = {"train": "## Train", "validation": "## Validation", "test": "## Test"}[role]
        section = md[md.index(title) :]
        assert section.index(f"| {slice_} |") < section.index("Positive slices")
    assert "Positive slices 2/2" in md
    assert f"worst slice {pct(aggs['test']['worst_slice_total'])}, best-slice share {num(share)}." in md
    # the baselines table shows each passive policy's total on each test slice
    for policy in ("buy_and_hold", "flat", "random"):
        for slice_ in ("test_1", "test_2"):
            total = pct(by(results, policy, slice_).metrics["total"])
            assert any(
                line.startswith(f"| {slice_} | {policy} |") and line.endswith(f"| {total} |")
                for line in md.splitlines()
            )

    text = json.dumps(data, allow_nan=False)  # raises on NaN / inf
    back = json.loads(text)
    assert back["decision"] == {"verdict": "reject", "reason": reason}
    assert back["model"] == model
    assert {k: v["passed"] for k, v in back["gates"].items()} == {
        "pass_majority_slices": True,
        "drawdown_under_cap": True,
        "no_single_slice_dependency": False,
        "beats_buy_and_hold": False,
        "regime_coverage": True,
    }
    assert back["gates"]["no_single_slice_dependency"] == {
        "passed": False,
        "value": pytest.approx(share),
        "threshold": 0.5,
        "rule": "best test slice carries <= 0.5 of the net total (net total > 0)",
    }
    assert back["gates"]["drawdown_under_cap"]["value"] == 0.0
    assert back["gates"]["drawdown_under_cap"]["threshold"] == 0.15
    assert back["gates"]["regime_coverage"] == {
        "passed": True,
        "value": 1.0,
        "threshold": 1.0,
        "rule": "test slices cover every regime label the data offers",
    }
    assert back["pending_gates"] == ["seed_stability", "deflated_sharpe", "pbo"]
    assert back["decisions"] == {}
    assert len(back["slices"]) == len(results)
    flat_row = next(s for s in back["slices"] if s["policy"] == "flat" and s["slice"] == "test_1")
    assert flat_row["profit_factor"] is None and flat_row["win_rate"] is None  # NaN -> null
    agent_row = next(s for s in back["slices"] if s["policy"] == AGENT and s["slice"] == "test_1")
    assert agent_row["profit_factor"] is None  # +inf -> null
    assert agent_row["total"] == pytest.approx(by(results, AGENT, "test_1").metrics["total"])
    assert (agent_row["role"], agent_row["regime"]) == ("test", "bull")
    assert back["aggregates"]["test"]["consistency"] == 1.0
    assert back["aggregates"]["test"]["profit_factor"] is None  # +inf -> null


def test_report_of_a_run_passing_every_gate_says_pass() -> None:
    results, aggs, gates, verdict, reason = judged(
        GatesConfig(max_best_slice_share=0.9, min_beats_buy_and_hold=-1.0)
    )
    md, data = report({"name": "m"}, results, aggs, gates, verdict, reason)
    assert [g.passed for g in gates] == [True, True, True, True, True]
    assert verdict == PASS == "pass"
    assert reason == "run gates passed; seed_stability is judged across seeds by the sweep-level step"
    assert md.endswith(f"## Decision: pass\n\n{reason}\n")
    assert md.count(": Y (") == 5 and ": N (" not in md
    assert COVERAGE_NOTE not in md
    back = json.loads(json.dumps(data, allow_nan=False))
    assert back["decision"] == {"verdict": "pass", "reason": reason}
    assert all(g["passed"] for g in back["gates"].values())
    assert back["model"] == {"name": "m"}  # fields left None are left out


def test_report_flags_regimes_the_test_set_misses() -> None:
    results, aggs, gates, verdict, reason = judged(GatesConfig(), coverage=2 / 3)
    decisions = {"classification": "DROP", "deployment": "retrain", "regimes_missing": "bear"}
    md, data = report({"name": "m"}, results, aggs, gates, verdict, reason, decisions=decisions)
    assert "- regime_coverage: N (value 0.67; " in md
    assert (
        f"{COVERAGE_NOTE} the test slices miss bear, which the data offers: the verdict can be "
        "retest at best; add test windows for it." in md
    )
    assert "Classification: DROP; deployment decision: retrain" in md
    assert md.index(COVERAGE_NOTE) < md.index("## Decision:")
    assert data["decisions"] == decisions
    assert data["gates"]["regime_coverage"]["passed"] is False
    assert data["gates"]["regime_coverage"]["value"] == pytest.approx(2 / 3)
    assert data["gates"]["regime_coverage"]["threshold"] == 1.0


def test_report_shows_no_coverage_note_when_no_regime_is_missing() -> None:
    results, aggs, gates, verdict, reason = judged(GatesConfig())
    decisions = {"classification": "REVIEW", "deployment": "paper", "regimes_missing": "none"}
    md, _ = report({"name": "m"}, results, aggs, gates, verdict, reason, decisions=decisions)
    assert COVERAGE_NOTE not in md and "the test slices miss" not in md
    assert "Classification: REVIEW; deployment decision: paper" in md


def test_model_card_leaves_out_the_fields_that_do_not_apply() -> None:
    card = ModelCard("policy", seed=3, agent="ppo", run_id="abc", version="2")
    assert card.as_dict() == {"name": "policy", "seed": 3, "agent": "ppo", "run_id": "abc", "version": "2"}
    results, aggs, gates, verdict, reason = judged(GatesConfig())
    md, data = build_report(RunReportInput(card, results, aggs, gates, verdict, reason, {}))
    # the Model line shows who it is (not the run id / version), the JSON keeps everything given
    assert "\nModel: name=policy, seed=3, agent=ppo\n" in md
    assert data["model"] == card.as_dict()
