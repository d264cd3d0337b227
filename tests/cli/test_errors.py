"""User errors through the real CLI: one line `error: ...`, exit status 2, no traceback, nothing
trained; a bug keeps its traceback (exit 1); HYDRA_FULL_ERROR=1 shows the traceback of either.
(The other side of each range, timesteps=-5 and seed=-1, is checked in tests/jobs/test_checks.py.)

The bad-input commands are independent, so a module fixture runs them two at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import hydra
import mlflow
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException, InstantiationException
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from rlpipe.cli.failures import (
    BUG,
    USER_ERROR,
    Failure,
    end_command,
    exit_status,
    is_user_error,
    one_line,
    read_failures,
    run_main,
)
from rlpipe.errors import ConfigError, DataError, StoreUnavailable, run_id_of
from rlpipe.tracking.store import RetryingClient
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF, ROOT


@dataclass(frozen=True)
class Case:
    module: str
    args: tuple[str, ...]
    expect: str
    """The start of the message on stderr (after `error: ` for rlpipe's errors)."""
    full_error: bool = False


CASES = {
    "timesteps=0": Case("rlpipe.train", ("timesteps=0",), "error: timesteps=0: the number of training steps"),
    "seed=2**32": Case("rlpipe.train", ("seed=4294967296",), "error: seed=4294967296: a seed must be"),
    "agent target": Case(
        "rlpipe.train", ("agent._target_=stable_baselines3.PPX",),
        "error: agent._target_='stable_baselines3.PPX' cannot be imported",
    ),
    "unwritable store": Case(
        "rlpipe.train", ("tracking.uri=sqlite:///{tmp}/afile/mlflow.db",),
        "error: tracking.uri=sqlite:///{tmp}/afile/mlflow.db: {tmp}/afile is a file, not a folder",
    ),
    "slice name": Case(
        "rlpipe.train", ("slices.windows.0.name=bull/1",),
        "error: slices.windows[0].name='bull/1': slice names become MLflow metric keys",
    ),
    "model name": Case(
        "rlpipe.train", ("tracking.registered_model=team/policy",),
        "error: tracking.registered_model='team/policy': MLflow refuses model names",
    ),
    "routine preset": Case(
        "rlpipe.train", ("experiment=routine_smoke",),
        "error: experiment=routine and experiment=routine_smoke (the `routine` group) are presets of the "
        "replayed routine, not of a training job: run python -m rlpipe.routine experiment=routine_smoke",
    ),
    "+foo=1": Case("rlpipe.train", ("+foo=1",), "error: unknown config key(s) foo: no schema declares them"),
    "hydra override": Case("rlpipe.train", ("env.stakee=1",), "Could not override 'env.stakee'."),
    "promote": Case("rlpipe.promote", (), "error: no sweep in experiment 'rlpipe' at sqlite:"),
    "evaluate": Case("rlpipe.evaluate", ("model=bogus",), "error: model='bogus': expected models:/"),
    "evaluate alias": Case(
        "rlpipe.evaluate", ("model=models:/rlpipe-policy@nope",),
        "error: model=models:/rlpipe-policy@nope: not in the store at sqlite:///{tmp}/mlflow.db (",
    ),
    "full error": Case("rlpipe.train", ("timesteps=0",), "error: timesteps=0: the number", full_error=True),
    "missing file": Case(
        "rlpipe.train", ("data=csv", "data.path={tmp}/nope.csv"), "error: data.path={tmp}/nope.csv: no such"
    ),
    "data error": Case(
        "rlpipe.train", ("data=csv", "data.path={tmp}/bad.csv"), "error: {tmp}/bad.csv: column 'close' has"
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    proc: subprocess.CompletedProcess
    tmp: Path
    uri: str

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def cli(module: str, args: list[str], full_error: bool = False) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the project root, with or without HYDRA_FULL_ERROR."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update({"RLPIPE_ROOT": str(ROOT), **({"HYDRA_FULL_ERROR": "1"} if full_error else {})})
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def run_case(case: Case, tmp: Path) -> Outcome:
    (tmp / "afile").write_text("")
    bars = [
        "timestamp,open,high,low,close,volume",
        "2024-01-01 00:00,1,2,0.5,1.5,10",
        "2024-01-01 01:00,1,2,0.5,-3,10",
    ]
    (tmp / "bad.csv").write_text("\n".join(bars) + "\n")  # a bar found bad only as the file is read
    uri = f"sqlite:///{tmp}/mlflow.db"
    args = [a.format(tmp=tmp) for a in case.args]
    base = ["experiment=smoke"] if case.module == "rlpipe.train" else []
    args = [*base, f"tracking.uri={uri}", f"hydra.run.dir={tmp}/out", *args]
    proc = cli(case.module, args, case.full_error)
    return Outcome(proc, tmp, uri)


CHECKED_IN_PROCESS = (
    "seed=2**32", "agent target", "unwritable store", "slice name", "model name", "routine preset",
)  # fmt: skip
"""Cases whose check is tested in process (tests/jobs/test_checks.py, agents/test_agent_spec.py): through
the CLI they run with the slow tests; the default suite keeps one case per path to exit status 2."""


def run_cases(names: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    dirs = {name: tmp_path_factory.mktemp("case") for name in names}  # no '=' in an override value
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_case, CASES[name], dirs[name]) for name in names}
        return {name: f.result() for name, f in futures.items()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    return run_cases([n for n in CASES if n not in CHECKED_IN_PROCESS], tmp_path_factory)


@pytest.fixture(scope="module")
def slow_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    return run_cases(list(CHECKED_IN_PROCESS), tmp_path_factory)


def job_runs(uri: str) -> list:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("rlpipe")
    return client.search_runs([exp.experiment_id]) if exp else []


def recorded(out: Outcome) -> list:
    """Every run and model version in the case's store (none when the store was never opened)."""
    if not (out.tmp / "mlflow.db").exists():
        return []
    return [*job_runs(out.uri), *MlflowClient(out.uri).search_model_versions()]


REFUSED_BEFORE_ANY_RUN = [
    pytest.param(n, marks=[pytest.mark.slow] if n in CHECKED_IN_PROCESS else [])
    for n in CASES
    if n not in ("full error", "data error")
]


@pytest.mark.parametrize("name", REFUSED_BEFORE_ANY_RUN)
def test_bad_input_exits_2_with_one_line_and_records_nothing(request, name):
    fixture = "slow_outcomes" if name in CHECKED_IN_PROCESS else "outcomes"
    out = request.getfixturevalue(fixture)[name]
    expect = CASES[name].expect.format(tmp=out.tmp)
    assert out.proc.returncode == USER_ERROR, out.output[-3000:]
    assert expect in out.proc.stderr
    assert "Traceback" not in out.output
    if expect.startswith("error: "):  # rlpipe's own message: one line
        assert [line for line in out.proc.stderr.splitlines() if line.startswith("error: ")] == [
            next(line for line in out.proc.stderr.splitlines() if expect in line)
        ]
    assert recorded(out) == []  # refused before any run: nothing recorded, nothing trained


def test_full_error_shows_the_traceback_and_still_exits_2(outcomes):
    out = outcomes["full error"]
    assert out.proc.returncode == USER_ERROR
    assert "Traceback (most recent call last)" in out.proc.stderr
    assert "rlpipe.errors.ConfigError: timesteps=0" in out.proc.stderr
    assert out.proc.stderr.rstrip().splitlines()[-1].startswith("error: timesteps=0: ")


def test_data_error_exits_2_and_is_recorded_as_a_failed_run_with_its_traceback(outcomes):
    out = outcomes["data error"]
    assert out.proc.returncode == USER_ERROR, out.output[-3000:]
    assert "Traceback" not in out.output
    (run,) = job_runs(out.uri)
    assert run.info.status == "FAILED"
    line = next(x for x in out.proc.stderr.splitlines() if x.startswith("error: "))
    assert line == (
        f"error: {out.tmp}/bad.csv: column 'close' has a non-positive price at 2024-01-01 01:00:00+00:00; "
        f"fix or drop that bar in the file (recorded as FAILED run {run.info.run_id}; traceback in its "
        "artifact error/traceback.txt)"
    )
    tb = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/error/traceback.txt")
    assert "Traceback" in tb and "DataError" in tb
    assert not MlflowClient(out.uri).search_model_versions()  # nothing trained, nothing registered


@pytest.mark.slow  # ~30 s; a sweep with one failing job exits 2 in the default suite (cli/test_train)
def test_multirun_with_one_bad_job_finishes_the_other_and_exits_2(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli(
        "rlpipe.train",
        ["-m", f"hydra.sweep.dir={tmp_path}/sweep", "experiment=smoke", "seed=-1,1", f"tracking.uri={uri}"],
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == USER_ERROR, out[-3000:]
    assert "Traceback" not in out
    runs = [r for r in job_runs(uri) if r.data.tags.get("rlpipe.kind") == "job"]
    assert [(r.info.status, r.data.params["seed"]) for r in runs] == [("FINISHED", "1")]
    assert "1 of 2 job(s) failed" in out
    errors = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: job 0 (experiment=smoke seed=-1 ")
    assert errors[0].endswith("): seed=-1: a seed must be an integer in [0, 4294967295] (numpy and torch "
                              "refuse others); pass e.g. seed=7")  # fmt: skip
    (failure,) = read_failures(tmp_path / "sweep")
    assert failure.user_error and failure.run_id is None


def test_hydra_config_errors_become_one_line():
    with (
        initialize_config_dir(str(CONF), version_base="1.3"),
        pytest.raises(ConfigCompositionException) as exc,
    ):
        compose("train", overrides=["env.stakee=1"])
    assert is_user_error(exc.value)
    assert one_line(exc.value) == (
        "Could not override 'env.stakee'. To append to your config use +env.stakee=1; "
        "Key 'stakee' not in 'SimConfigSchema'; full_key: env.stakee"
    )


def test_user_errors_and_bugs_are_told_apart():
    def chained(outer: Exception, cause: Exception) -> Exception:
        outer.__cause__ = cause
        return outer

    assert is_user_error(DataError("x")) and is_user_error(chained(ValueError("y"), ConfigError("x")))
    assert is_user_error(chained(InstantiationException("wrapped"), ConfigError("env.kind='x'")))
    assert one_line(chained(InstantiationException("wrapped"), ConfigError("env.kind='x'"))) == "env.kind='x'"
    assert not is_user_error(chained(InstantiationException("wrapped"), TypeError("bug")))
    assert not is_user_error(KeyError("bug")) and not is_user_error(None)


def test_exit_status_is_2_only_when_every_failure_is_a_user_error():
    user, bug = Failure("bad seed", True), Failure("KeyError: 'x'", False, "r1")
    assert exit_status([user, user]) == USER_ERROR
    assert exit_status([user, bug]) == BUG
    assert exit_status([user], unexplained=1) == BUG  # a failed run no job explained (killed)
    assert exit_status([]) == BUG  # only called on failure: nothing explained it


def test_a_failure_round_trips_through_the_job_folder(tmp_path):
    failures = [
        Failure("seed=-1: bad", True, None, "0 (seed=-1)"),
        Failure("boom", False, "r1", "1 (seed=1)"),
    ]
    for i, f in enumerate(failures):
        f.write(tmp_path / str(i))
    assert read_failures(tmp_path) == failures
    assert failures[0].line() == "error: job 0 (seed=-1): seed=-1: bad"
    assert failures[1].line() == (
        "error: job 1 (seed=1): boom "
        "(recorded as FAILED run r1; traceback in its artifact error/traceback.txt)"
    )


def test_a_command_ends_on_a_user_error_with_one_line_and_re_raises_a_bug(capsys):
    with pytest.raises(SystemExit) as stop:
        try:
            raise ConfigError("seed=-1: bad")
        except ConfigError as exc:
            end_command(exc)
    assert stop.value.code == USER_ERROR and capsys.readouterr().err == "error: seed=-1: bad\n"
    with pytest.raises(KeyError) as bug:
        try:
            raise KeyError("x")
        except KeyError as exc:
            end_command(exc, run_id="r1")
    assert bug.value.__notes__ == ["recorded as FAILED run r1 (error/traceback.txt)"]


def test_the_line_names_the_run_the_error_carries_without_searching_the_store(
    tracking_uri, monkeypatch, capsys
):
    """`Tracker.run` notes on the error the run it ended (the innermost); the command's line names
    that run, though a newer run of the same name exists, and asks the store nothing."""
    tracker = Tracker(tracking_uri, "rlpipe")
    with (
        pytest.raises(DataError) as crash,
        tracker.run("seed-1", {}) as outer,
        tracker.run("seed-1", {}) as failed,
    ):
        raise DataError("bad.csv: column 'close' has a non-positive price")
    with tracker.run("seed-1", {}):  # what a search by name and newest start would find
        pass
    assert run_id_of(crash.value) == failed.run_id != outer.run_id

    def no_search(*args, **kwargs):
        raise AssertionError("the failed run was searched for")

    monkeypatch.setattr(RetryingClient, "search_runs", no_search)
    with pytest.raises(SystemExit) as stop:
        end_command(crash.value, run_id_of(crash.value))
    assert stop.value.code == USER_ERROR
    assert capsys.readouterr().err == (
        f"error: bad.csv: column 'close' has a non-positive price (recorded as FAILED run {failed.run_id}; "
        "traceback in its artifact error/traceback.txt)\n"
    )


def test_hydra_exit_status_1_becomes_2_only_for_a_config_error():
    def hydra_main(error: Exception):  # what Hydra does when composing fails
        def main() -> None:
            try:
                raise error
            except Exception:
                sys.exit(1)

        return main

    with pytest.raises(SystemExit) as stop:
        run_main(hydra_main(ConfigCompositionException("Could not override 'env.stakee'.")))
    assert stop.value.code == USER_ERROR
    with pytest.raises(SystemExit) as stop:
        run_main(hydra_main(KeyError("bug")))
    assert stop.value.code == BUG


def test_a_sweep_refused_before_its_first_job_leaves_no_run_in_the_store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    proc = cli("rlpipe.train", ["-m", "experiment=smoke", "seed=1,x", f"tracking.uri={uri}",
                                f"hydra.sweep.dir={tmp_path}/multirun"])  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        "error: Error merging override seed=x; Value 'x' of type 'str' could not be converted to Integer; "
        "full_key: seed"
    )
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("rlpipe").experiment_id
    assert client.search_runs([experiment]) == []  # the UI shows nothing of it
    (parent,) = client.search_runs([experiment], run_view_type=mlflow.entities.ViewType.DELETED_ONLY)
    assert parent.info.status == "KILLED" and parent.data.tags["rlpipe.kind"] == "sweep"  # restorable


def test_a_tracking_server_that_is_not_running_stops_a_sweep_before_any_job(tmp_path):
    from rlpipe.server.postgres import free_port

    port = free_port()  # nothing listens there
    args = ["-m", "experiment=smoke", "seed=1,2", "tracking=server", f"tracking.uri=http://127.0.0.1:{port}",
            f"hydra.sweep.dir={tmp_path}/multirun"]  # fmt: skip
    proc = cli("rlpipe.train", args)
    assert proc.returncode == 2 and "Launching" not in proc.stdout + proc.stderr  # no job started
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: tracking.uri=http://127.0.0.1:{port}: no MLflow tracking server answers there after 3 "
        "tries (connection refused); start one with `make server` (PostgreSQL + MLflow on 127.0.0.1), "
        "or point tracking.uri at a running server (tracking=local records to the local sqlite store)"
    )


@pytest.mark.parametrize(
    ("override", "line"),
    [
        (
            "lengths=128",
            "error: Error merging override lengths=128; Invalid value assigned: int is not "
            "a ListConfig, list or tuple. full_key: lengths",
        ),
        (
            "checkpoints=[128]",
            "error: config key checkpoints is now lengths: the training lengths scored on validation, e.g. "
            "lengths=[500000,1000000] (the resumable state's cadence and folder are still checkpoint.every "
            "and checkpoint.dir)",
        ),
        (
            "agent=ppx",
            "error: In 'train': Could not find 'agent/ppx'; Available options in 'agent': a2c; dqn; ppo",
        ),
        (
            "seed=abc",
            "error: Error merging override seed=abc; Value 'abc' of type 'str' could not be converted "
            "to Integer; full_key: seed",
        ),
    ],
)
def test_a_hydra_composition_error_is_one_error_line_and_exit_2(monkeypatch, capsys, override, line):
    """Hydra reports these itself before our code runs (4-9 lines, exit 1); its report is replaced."""
    from hydra.core.global_hydra import GlobalHydra

    @hydra.main(version_base="1.3", config_path=str(CONF), config_name="train")
    def main(cfg) -> None:  # as rlpipe.train's, found by path in a test
        raise AssertionError("the config should not compose")

    monkeypatch.setattr(sys, "argv", ["train.py", override])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    try:
        with pytest.raises(SystemExit) as stop:
            run_main(main)
    finally:
        GlobalHydra.instance().clear()
    assert stop.value.code == USER_ERROR
    assert capsys.readouterr().err == line + "\n"


def test_a_store_gone_mid_command_is_one_line_with_a_local_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no Hydra output folder: the working directory
    cause = MlflowException("attempt to write a readonly database")
    with pytest.raises(SystemExit) as stop:
        try:
            raise StoreUnavailable("tracking.uri=sqlite:///x/mlflow.db: the store went away") from cause
        except StoreUnavailable as exc:
            end_command(exc)
    kept = tmp_path / "error" / "traceback.txt"
    assert stop.value.code == USER_ERROR
    assert capsys.readouterr().err == (
        f"error: tracking.uri=sqlite:///x/mlflow.db: the store went away; full traceback in {kept}\n"
    )
    assert "attempt to write a readonly database" in kept.read_text()  # the cause, with its frames
    failure = Failure.of(StoreUnavailable("gone"), job="0 (seed=1)", folder=tmp_path / "0")
    assert failure.traceback_file == str(tmp_path / "0" / "error" / "traceback.txt")  # a multirun job's own
    assert Failure.of(ConfigError("seed=-1")).traceback_file is None  # the store keeps the others
