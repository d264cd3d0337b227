"""The tracking server end to end: PostgreSQL and `mlflow server --serve-artifacts` started as
`make server` starts them, then a 3-seed smoke sweep, the sweep step, a re-evaluation and a
rollback through it, each by the real CLI (a few minutes on 2 cores; `make test-server`)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from rlpipe.errors import ServerError
from rlpipe.policy.model import PolicyModel
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.server.postgres import free_port, postgres_port
from rlpipe.server.tracking_server import ServerPaths, running, start, stop
from rlpipe.tracking import tags as T
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.tracker import Tracker
from tests.support.project import cli

NOT_INSTALLED = "the `server` extra is not installed (make test-server installs it)"
pytest.importorskip("pgserver", reason=NOT_INSTALLED)
pytest.importorskip("psycopg", reason=NOT_INSTALLED)
pytestmark = pytest.mark.slow
MODEL = "rlpipe-policy"


@dataclass(frozen=True)
class Server:
    """A running tracking server: its URI and its state folder."""

    uri: str
    root: Path
    paths: ServerPaths


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """PostgreSQL + the MLflow server on free ports, state in a temporary folder; stopped after."""
    root = tmp_path_factory.mktemp("server")
    uri = start(root, port=free_port())
    paths = ServerPaths.under(root)
    yield Server(uri, root, paths)
    stop(root)
    assert running(paths) is None and postgres_port(paths.pgdata) is None  # nothing left behind


@dataclass(frozen=True)
class SweepRun:
    proc: subprocess.CompletedProcess
    sweep_id: str
    parent: str
    jobs: list[Run]


@pytest.fixture(scope="module")
def sweep(server: Server, tmp_path_factory: pytest.TempPathFactory) -> SweepRun:
    """`tracking=server` with MLFLOW_TRACKING_URI set, as a user of `make server` runs a sweep."""
    tmp = tmp_path_factory.mktemp("sweep")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", server.uri)
        proc = cli(
            "rlpipe.train", "-m", f"hydra.sweep.dir={tmp}/multirun", "experiment=smoke", "seed=1,2,3",
            "tracking=server",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name("rlpipe").experiment_id
    (parent,) = client.search_runs([exp], filter_string=f"tags.`{T.KIND}` = '{T.SWEEP}'")
    jobs = client.search_runs([exp], filter_string=f"tags.`{T.KIND}` = '{T.JOB}'")
    return SweepRun(proc, parent.data.tags[T.SWEEP_ID], parent.info.run_id, jobs)


def test_the_sweep_records_three_finished_jobs_under_one_finished_parent(server, sweep):
    client = MlflowClient(server.uri)
    parent = client.get_run(sweep.parent)
    assert parent.info.status == "FINISHED"
    assert sorted(r.data.tags[T.SEED] for r in sweep.jobs) == ["1", "2", "3"]
    for run in sweep.jobs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == sweep.parent
        assert run.data.tags[T.SWEEP_ID] == sweep.sweep_id
    report = {f.path for f in client.list_artifacts(sweep.parent, "sweep")}
    assert {"sweep/report.md", "sweep/report.json"} <= report


def test_artifacts_go_through_the_proxy_into_the_servers_folder(server, sweep):
    for run in sweep.jobs:
        assert (
            run.info.artifact_uri == f"mlflow-artifacts:/{run.info.experiment_id}/{run.info.run_id}/artifacts"
        )
        stored = server.paths.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
        assert (stored / "report" / "report.md").stat().st_size > 0
    parent = server.paths.artifacts / sweep.jobs[0].info.experiment_id / sweep.parent / "artifacts"
    assert (parent / "sweep" / "report.md").read_text().strip()


def test_every_job_registers_a_version_whose_policy_loads_through_the_server(server, sweep):
    client = MlflowClient(server.uri)
    versions = [v for v in client.search_model_versions(f"name='{MODEL}'") if v.tags.get(T.SWEEP_ID)]
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in sweep.jobs)
    tracker = Tracker(server.uri, "rlpipe")
    exp = sweep.jobs[0].info.experiment_id
    for v in versions:
        # A version's model_id does not travel over REST (MLflow's proto lacks it): its source names it.
        (model_id,) = re.fullmatch(rf"mlflow-artifacts:/{exp}/models/(m-\w+)/artifacts", v.source).groups()
        assert client.get_logged_model(model_id).source_run_id == v.run_id
        assert (server.paths.artifacts / exp / "models" / model_id / "artifacts" / "MLmodel").is_file()
        ref = resolve_model(tracker, f"models:/{MODEL}/{v.version}")
        assert ref.sha256 and isinstance(load_policy(tracker, ref), PolicyModel)  # files match their sha256


def registry_state(client: MlflowClient) -> dict:
    return {
        v.version: (
            v.current_stage,
            tuple(sorted(client.get_model_version(MODEL, v.version).aliases)),
            v.tags,
        )
        for v in client.search_model_versions(f"name='{MODEL}'")
    }


def test_promote_reruns_the_sweep_step_on_the_server_and_changes_nothing(server, sweep):
    client = MlflowClient(server.uri)
    before = registry_state(client)
    proc = cli(
        "rlpipe.promote", f"sweep_id={sweep.sweep_id}", "tracking=server", f"tracking.uri={server.uri}"
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert registry_state(client) == before
    assert client.get_run(sweep.parent).info.status == "FINISHED"
    exp = sweep.jobs[0].info.experiment_id
    assert len(client.search_runs([exp], filter_string=f"tags.`{T.KIND}` = '{T.SWEEP}'")) == 1


def test_a_version_is_reevaluated_walk_forward_as_a_run_on_the_server(server, sweep):
    client = MlflowClient(server.uri)
    version = str(min(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'")))
    proc = cli(
        "rlpipe.evaluate", f"model=models:/{MODEL}/{version}", "slices=walk_forward", "tracking=server",
        f"tracking.uri={server.uri}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = client.get_run(client.get_model_version(MODEL, version).tags[T.LAST_EVALUATION_RUN])
    assert run.info.status == "FINISHED" and run.data.tags[T.KIND] == T.EVALUATION
    assert run.data.tags[T.MODEL_VERSION] == version
    assert all(f"slice/fold{k}/total" in run.data.metrics for k in range(1, 6))
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    stored = server.paths.artifacts / run.info.experiment_id / run.info.run_id / "artifacts"
    assert (stored / "report" / "report.json").is_file()


def test_rollback_restores_the_previous_champion_on_the_server(server, sweep):
    client = MlflowClient(server.uri)
    first, second = sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))[:2]
    registry = Registry(client, MODEL)
    for v in (first, second):  # two champions in turn, as two promoting sweeps would crown them
        registry.apply_sweep(sweep.sweep_id, champion=v, challengers=[], why={v: "test: crowned"})
    assert registry.alias_version("champion") == second
    proc = cli("rlpipe.promote", "rollback=true", "tracking=server", f"tracking.uri={server.uri}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert registry.alias_version("champion") == first
    assert registry.version(first).current_stage == "Production"
    assert registry.version(second).current_stage == "Archived"
    retired, restored = (what for _, _, what in registry.history([first, second])[-2:])
    assert retired.startswith("Archived by ") and retired.endswith(f": rolled back to v{first}")
    assert restored.startswith("Production @champion by ")
    assert restored.endswith(f": rollback: restored in place of v{second}")


def test_start_again_says_it_is_running_and_a_busy_port_is_refused(server, tmp_path):
    proc = cli("rlpipe.server", "start", "--data", str(server.root))
    assert proc.returncode == 0 and f"already running at {server.uri}" in proc.stdout
    status = cli("rlpipe.server", "status", "--data", str(server.root))
    assert status.returncode == 0 and server.uri in status.stdout
    port = int(server.uri.rsplit(":", 1)[1])
    with pytest.raises(ServerError, match=f"port {port} on 127.0.0.1 is already in use"):
        start(tmp_path / "other", port=port)
    assert not (tmp_path / "other" / "postgres").exists()  # refused before PostgreSQL started


def test_processes_writing_through_the_server_at_once_lose_nothing(server: Server, tmp_path: Path):
    """3 processes x 2 jobs' writes (run, metric, logged model, version) into one server, then two
    sweep steps at once on the same decision: 0 lost runs, 0 ghosts, unique versions, one champion."""
    from tests.support.stores import in_processes, sweep_step, worker

    versions = in_processes(worker, [(server.uri, i, 2, str(tmp_path)) for i in range(3)])
    client = MlflowClient(server.uri)
    runs = client.search_runs([client.get_experiment_by_name("exp").experiment_id])
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
    flat = sorted((v for vs in versions for v in vs), key=int)
    assert flat == [str(v) for v in range(1, 7)]
    in_processes(sweep_step, [(server.uri, flat[0], flat[1:3])] * 2)
    registry = Registry(client, "m")
    assert registry.aliases() == {"champion": flat[0], "challenger": flat[1], "challenger-2": flat[2]}
    assert [registry.version(v).current_stage for v in flat[:3]] == ["Production", "Staging", "Staging"]
    assert "m.lock" not in {m.name for m in client.search_registered_models()}
