"""Evaluation gates: per-run rules and verdicts, sweep-level rules, statistics. No hydra, no mlflow."""

from rlpipe.gates.rules import PASS, GateResult, GatesConfig, passed_run_gates, run_gates, run_verdict

__all__ = ["PASS", "GateResult", "GatesConfig", "passed_run_gates", "run_gates", "run_verdict"]
