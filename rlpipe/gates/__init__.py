"""Evaluation gates: per-run rules, verdicts (later: sweep-level rules). No hydra, no mlflow."""

from rlpipe.gates.rules import GateResult, GatesConfig, run_gates, run_verdict

__all__ = ["GateResult", "GatesConfig", "run_gates", "run_verdict"]
