"""The sweep report on hand-made run records and job rows: configurations, runs, registry, JSON."""

from __future__ import annotations

import json

import pytest

from rlpipe.gates.rules import PASS, PROMOTE, REJECT, RETEST, GatesConfig
from rlpipe.gates.sweep_gates import RunRecord, SweepDecision, evaluate_sweep
from rlpipe.reports.format import num, pct
from rlpipe.reports.sweep_report import Transition, sweep_report
from rlpipe.tracking.rows import JobRow
from tests.support.records import LABEL_A, LABEL_B, job_row, record

TRANSITIONS: list[Transition] = [
    ("2024-05-01 10:00:00", "2", "Production + champion by rlpipe.sweep: all sweep gates passed"),
    ("2024-05-01 10:00:01", "3", "Staging + challenger by rlpipe.sweep: passing seed"),
]


# Helpers.


def records() -> list[RunRecord]:
    """Configuration a: three skilled, stable seeds (promoted); configuration b: two rejected seeds."""
    good = [record("a", s, drift=0.002, total=t, label=LABEL_A) for s, t in ((1, 0.1), (2, 0.3), (3, 0.2))]
    bad = [
        record("b", s, drift=-0.001, verdict=REJECT, total=-0.1, sharpe=-1.0, label=LABEL_B) for s in (1, 2)
    ]
    return good + bad


def rows_of(recs: list[RunRecord], d: SweepDecision) -> list[JobRow]:
    """The finished runs of `recs`, then one failed run of configuration b."""
    verdicts = {r.run_id: c.verdict for c in d.configs for r in c.runs}
    finished = [
        job_row(
            r.run_id,
            seed=r.seed,
            config_hash=r.config_hash,
            label=r.label,
            verdict=r.run_verdict,
            sweep_verdict=verdicts[r.run_id],
            version=r.model_version if r.run_verdict == PASS else "",
            test=dict(r.test),
        )
        for r in recs
    ]
    failed = job_row("b-3", seed=3, config_hash="b", label=LABEL_B, status="FAILED", verdict="failed")
    return [*finished, failed]


def sweep() -> tuple[list[RunRecord], SweepDecision, list[JobRow]]:
    recs = records()
    d = evaluate_sweep(recs, GatesConfig())
    return recs, d, rows_of(recs, d)


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def table_row(md: str, first: str) -> list[str]:
    """The cells of the one markdown table row whose first cell is `first`."""
    (line,) = [line for line in md.splitlines() if line.startswith("|") and cells(line)[0] == first]
    return cells(line)


# The report.
def test_sweep_decision_of_the_fixture_promotes_a_and_rejects_b() -> None:
    _, d, _ = sweep()
    assert [(c.config_hash, c.verdict) for c in d.configs] == [("a", PROMOTE), ("b", REJECT)]
    assert d.champion is not None and d.champion.run_id == "a-2"
    assert [r.run_id for r in d.challengers] == ["a-3", "a-1"]
    assert d.pbo is not None


def test_markdown_lists_every_configuration_with_its_gates_and_verdict() -> None:
    _, d, rows = sweep()
    md, _ = sweep_report("sw-1", rows, d, TRANSITIONS)
    assert md.startswith("# Sweep report: sw-1\n")
    assert (
        "Runs: 6 (1 failed, 0 skipped); configurations: 2; trials for the deflated Sharpe ratio "
        "(configurations the test slices judge, a search's through its pick): 2; probability of backtest "
        "overfitting: "
        f"{num(d.pbo.pbo)}." in md  # type: ignore[union-attr]
    )
    a, b = d.configs
    assert table_row(md, LABEL_A) == [
        LABEL_A, "a", "3/3", num(a.mean_validation), pct(a.mean_total), "2.00", num(a.deflated_sharpe),
        "Y", "REVIEW", "paper", PROMOTE, "all sweep gates passed",
    ]  # fmt: skip
    assert table_row(md, LABEL_B) == [
        LABEL_B, "b", "0/2", num(b.mean_validation), pct(b.mean_total), "-1.00", num(b.deflated_sharpe),
        "N", "REVIEW", "paper", REJECT, "no seed passed its run gates",
    ]  # fmt: skip
    assert pct(a.mean_total) == "+20.00%" and pct(b.mean_total) == "-10.00%"
    assert num(a.mean_validation) == "0.20" and num(b.mean_validation) == "-0.10"
    assert md.index("## Configurations") < md.index("## Runs") < md.index("## Registry")


def test_markdown_runs_table_has_one_row_per_run_the_failed_one_included() -> None:
    _, d, rows = sweep()
    md, _ = sweep_report("sw-1", rows, d, TRANSITIONS)
    runs = md[md.index("## Runs") : md.index("## Registry")]
    body = [cells(line) for line in runs.splitlines() if line.startswith("| ppo-")]
    assert [c[0] for c in body] == [r.run_name for r in rows]
    assert table_row(runs, f"{LABEL_A}-s2") == [
        f"{LABEL_A}-s2",
        "2",
        "FINISHED",
        PASS,
        "+30.00%",
        "5.00%",
        "+80.00%",
        "2",
    ]
    assert table_row(runs, f"{LABEL_B}-s1") == [
        f"{LABEL_B}-s1",
        "1",
        "FINISHED",
        REJECT,
        "-10.00%",
        "5.00%",
        "+80.00%",
        "-",
    ]
    assert table_row(runs, f"{LABEL_B}-s3") == [
        f"{LABEL_B}-s3",
        "3",
        "FAILED",
        "failed",
        "n/a",
        "n/a",
        "n/a",
        "-",
    ]


def test_markdown_names_the_champion_challengers_and_transitions() -> None:
    _, d, rows = sweep()
    md, _ = sweep_report("sw-1", rows, d, TRANSITIONS)
    assert "Champion: v2 (run a-2)." in md
    assert "Challengers: v3, v1." in md
    assert (
        "Selection (validation only; test results gate, never rank): champion: configuration "
        f"{LABEL_A}, best mean validation sharpe_mean (0.200) of 1 promoted; its best seed by validation."
    ) in md
    assert md.endswith(
        "- 2024-05-01 10:00:00 v2: Production + champion by rlpipe.sweep: all sweep gates passed\n"
        "- 2024-05-01 10:00:01 v3: Staging + challenger by rlpipe.sweep: passing seed\n"
    )


def test_markdown_without_a_champion_or_transitions_says_none() -> None:
    recs = [record("b", s, verdict=REJECT, label=LABEL_B) for s in (1, 2)]
    d = evaluate_sweep(recs, GatesConfig())
    md, data = sweep_report("sw-2", rows_of(recs, d), d, [])
    assert "Champion: none promoted." in md
    assert "Challengers: none." in md
    assert md.endswith("Transitions (when, version, stage and alias, by whom, why):\n\n- none\n")
    assert (data["champion"], data["challengers"], data["transitions"]) == (None, [], [])


def test_json_has_failed_runs_champion_and_gates_with_values_and_thresholds() -> None:
    _, d, rows = sweep()
    _, data = sweep_report("sw-1", rows, d, TRANSITIONS)
    back = json.loads(json.dumps(data, allow_nan=False))
    assert back["sweep_id"] == "sw-1"
    assert back["n_trials"] == 2
    assert back["pbo"] == pytest.approx(d.pbo.pbo)  # type: ignore[union-attr]
    assert back["failed_runs"] == ["b-3"]
    assert back["champion"] == {"run_id": "a-2", "version": "2"}
    assert back["challengers"] == [{"run_id": "a-3", "version": "3"}, {"run_id": "a-1", "version": "1"}]
    assert back["transitions"][0] == {
        "when": "2024-05-01 10:00:00",
        "version": "2",
        "what": TRANSITIONS[0][2],
    }
    assert [c["label"] for c in back["configurations"]] == [LABEL_A, LABEL_B]
    for c, conf in zip(d.configs, back["configurations"], strict=True):
        assert conf["config_hash"] == c.config_hash
        assert (conf["verdict"], conf["reason"]) == (c.verdict, c.reason)
        assert conf["runs"] == [r.run_id for r in c.runs]
        assert conf["candidate_run"] == c.candidate.run_id  # type: ignore[union-attr]
        assert conf["mean_test_total"] == pytest.approx(c.mean_total)
        assert conf["deflated_sharpe"] == pytest.approx(c.deflated_sharpe)
        assert list(conf["gates"]) == ["seed_stability", "deflated_sharpe", "pbo"]
        for g in c.gates:
            assert conf["gates"][g.name] == {
                "passed": g.passed,
                "value": pytest.approx(g.value),
                "threshold": g.threshold,
                "rule": g.rule,
            }
    a_gates = back["configurations"][0]["gates"]
    assert a_gates["seed_stability"]["value"] == 1.0 and a_gates["seed_stability"]["threshold"] == 0.6
    assert a_gates["deflated_sharpe"]["passed"] is True and a_gates["deflated_sharpe"]["threshold"] == 0.95
    assert a_gates["pbo"]["threshold"] == 0.5
    assert back["configurations"][1]["gates"]["seed_stability"] == {
        "passed": False,
        "value": 0.0,
        "threshold": 0.6,
        "rule": d.configs[1].gates[0].rule,
    }


def test_json_of_one_configuration_writes_nan_as_null() -> None:
    recs = [record("a", 1, label=LABEL_A)]  # one seed, one configuration: no PBO, retest
    d = evaluate_sweep(recs, GatesConfig())
    rows = rows_of(recs, d)
    md, data = sweep_report("sw-3", rows, d, [])
    text = json.dumps(data, allow_nan=False)  # raises on NaN / inf
    back = json.loads(text)
    assert back["pbo"] is None
    (conf,) = back["configurations"]
    assert conf["verdict"] == RETEST
    assert conf["gates"]["pbo"]["value"] is None  # not applicable: NaN -> null
    assert conf["gates"]["pbo"]["passed"] is True
    assert "probability of backtest overfitting: n/a (one configuration)." in md


def test_report_is_deterministic_for_the_same_inputs() -> None:
    first = sweep()
    again = sweep()  # fresh records, decision and rows
    md1, data1 = sweep_report("sw-1", first[2], first[1], TRANSITIONS)
    md2, data2 = sweep_report("sw-1", again[2], again[1], TRANSITIONS)
    assert md1 == md2
    assert json.dumps(data1, allow_nan=False) == json.dumps(data2, allow_nan=False)
