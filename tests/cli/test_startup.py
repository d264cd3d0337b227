"""A bad config is refused before torch, SB3, MLflow or the compiled kernels are imported (issue 20).

Each command runs for real (`python -X importtime -m rlpipe.<command> ...`): Python lists every module
it imports on stderr, so the test reads what the refused command imported, not what one of its
modules would. The timing itself is a benchmark's (README "Performance"), never a test's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from rlpipe.cli.failures import USER_ERROR
from tests.support.project import ROOT

HEAVY = ("torch", "stable_baselines3", "mlflow", "numba")
IMPORT_TIME = "import time:"


@dataclass(frozen=True)
class Case:
    module: str
    args: tuple[str, ...]
    error: str
    """The start of the one line on stderr."""


CASES = {
    "unknown key": Case("rlpipe.train", ("not_a_key=1",), "error: Could not override 'not_a_key'."),
    "unknown key added": Case("rlpipe.train", ("+not_a_key=1",), "error: unknown config key(s) not_a_key:"),
    "wrong type": Case(
        "rlpipe.train", ("timesteps=many",),
        "error: Error merging override timesteps=many; Value 'many' of type 'str' could not be converted to "
        "Integer; full_key: timesteps",
    ),
    "bad value": Case("rlpipe.train", ("timesteps=-5",), "error: timesteps=-5: the number of training steps"),
    "group value": Case("rlpipe.train", ("env.stake=2",), "error: env.stake=2.0 must be in (0, env.max_"),
    "leaky windows": Case(
        "rlpipe.train", ("slices.embargo=3000D",), "error: validation slice 'val_bull_1' [2022-01-26 00:00:00"
    ),
    "evaluate": Case("rlpipe.evaluate", ("not_a_key=1",), "error: Could not override 'not_a_key'."),
    "promote": Case(
        "rlpipe.promote", ("tracking.registered_model=team/policy",),
        "error: tracking.registered_model='team/policy': MLflow refuses model names",
    ),
    "paper": Case("rlpipe.paper", ("paper.poll_s=0",), "error: paper.poll_s=0.0 must be > 0"),
    "routine": Case("rlpipe.routine", ("routine.steps=0",), "error: routine.steps=0 must be >= 1"),
    "runs": Case(
        "rlpipe.runs", ("reap", "tracking.registered_model=team/policy"),
        "error: tracking.registered_model='team/policy': MLflow refuses model names",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    returncode: int
    imported: set[str]
    """Every module the command imported (`-X importtime`)."""
    lines: list[str]
    """Its stderr without the import times."""


def run_case(case: Case, tmp: Path) -> Outcome:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["RLPIPE_ROOT"] = str(tmp)  # the commands' folders (outputs/, a store) go there, if anywhere
    args = [*case.args, f"tracking.uri=sqlite:///{tmp}/mlflow.db"]
    cmd = [sys.executable, "-X", "importtime", "-m", case.module, *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    stderr = proc.stderr.splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in stderr if line.startswith(IMPORT_TIME)}
    return Outcome(proc.returncode, imported, [x for x in stderr if x and not x.startswith(IMPORT_TIME)])


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    dirs = {name: tmp_path_factory.mktemp("case") for name in CASES}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_case, case, dirs[name]) for name, case in CASES.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_config_is_refused_in_one_line_before_the_heavy_imports(outcomes, name):
    out, case = outcomes[name], CASES[name]
    assert out.returncode == USER_ERROR, out.lines[-30:]
    assert len(out.lines) == 1 and out.lines[0].startswith(case.error), out.lines[-30:]
    assert {"hydra", "omegaconf", "rlpipe.cli.failures"} <= out.imported  # the import times were read
    heavy = sorted(m for m in out.imported if m.split(".")[0] in HEAVY)
    assert heavy == [], f"{case.module} {' '.join(case.args)} imported {heavy[:5]} before refusing"


def test_the_import_times_show_a_heavy_import_when_there_is_one(tmp_path):
    """The other side: a config that passes every check goes on to import the job's modules (the
    agent's check imports SB3, so the command would train; an unknown SB3 keyword stops it there)."""
    case = Case("rlpipe.train", ("experiment=smoke", "+agent.not_a_keyword=1"), "error: agent.not_a_keyword")
    out = run_case(case, tmp_path)
    assert out.returncode == USER_ERROR, out.lines[-30:]
    assert len(out.lines) == 1 and out.lines[0].startswith(case.error), out.lines[-30:]
    assert {"torch", "stable_baselines3"} <= out.imported
