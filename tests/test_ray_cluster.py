"""The topology a team runs: a Ray head and a second Ray node joined to it (one CPU each, started as
`make cluster` starts them), the PostgreSQL tracking server of `make server` as the store, and through
the real CLI a 4-job sweep and a 2-member PBT population launched onto the cluster with
`hydra/launcher=ray_cluster` (`address: auto`, RAY_ADDRESS naming the head). Both nodes run jobs, every
run finishes in PostgreSQL, the sweep step runs once in the launching process, and the cluster and
server are stopped at the end whatever happened (a few minutes on 2 cores; `make test-all`)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from rlpipe import ray_cluster
from rlpipe.errors import ClusterError
from rlpipe.jobs.naming import sweep_id_for
from rlpipe.server import tracking_server
from rlpipe.server.postgres import free_port
from rlpipe.tracking import queries
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker
from tests.support.project import cli, wait_for

needs_extras = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None or importlib.util.find_spec("pgserver") is None,
    reason="needs the ray and server extras: pip install -e '.[ray,server]' (make test-all installs them)",
)
SMALL = ["progress_bar=false", "plots=false", "env.episode_bars=128", "env.episode_bars_std=0.0"]


def session_of(script: str) -> subprocess.Popen:
    """`sh -c script` in a session of its own, as `ray start` runs a node."""
    return subprocess.Popen(["sh", "-c", script], start_new_session=True)


def test_stopping_a_node_ends_every_process_of_its_session_and_nothing_else():
    stubborn = session_of("trap '' TERM; sleep 300 & sleep 300 & wait")  # SIGTERM ignored, as by a busy GCS
    outsider = subprocess.Popen(["sleep", "300"])
    try:  # sh and its two children, once sh has started them (a busy machine takes a moment)
        wait_for(lambda: len(ray_cluster.session_pids(stubborn.pid)) == 3, timeout=30)
        assert ray_cluster.end_session(stubborn.pid, grace_s=0.5) == 3
        assert ray_cluster.session_pids(stubborn.pid) == [] and stubborn.wait(5) == -signal.SIGKILL
        assert outsider.poll() is None  # another session's process is left alone
    finally:
        outsider.kill()
        outsider.wait()


def test_a_busy_port_is_refused_before_any_node_starts(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ClusterError, match=f"port {port} on 127.0.0.1 is already in use"):
            ray_cluster.start(tmp_path, port=port)
    assert not (tmp_path / "cluster.json").exists()


def test_without_the_ray_extra_the_cluster_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a)
    )
    with pytest.raises(ClusterError, match=r"pip install -e '\.\[ray\]'"):
        ray_cluster.node_command(0, "127.0.0.1:6380", Path("/tmp/x"), 1, 128)


def test_status_and_stop_of_a_cluster_never_started(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    caplog.set_level("INFO", logger="rlpipe.ray_cluster")
    assert ray_cluster.main(["status", "--data", str(tmp_path)]) == 1  # status: 0 only when every node runs
    assert ray_cluster.main(["stop", "--data", str(tmp_path)]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"Ray cluster: not running ({tmp_path})",
        f"no Ray cluster was started from {tmp_path}",
    ]


@dataclass(frozen=True)
class Cluster:
    """The running cluster: the head's address, its nodes' Ray ids, and the tracking server's URI."""

    address: str
    node_ids: frozenset[str]
    uri: str


@contextlib.contextmanager
def driver(address: str) -> Iterator[Any]:
    """`ray` connected to the cluster as a driver of its own, disconnected after the block."""
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def alive_node_ids(address: str) -> frozenset[str]:
    """The ids of the cluster's live nodes."""
    with driver(address) as ray:
        return frozenset(n["NodeID"] for n in ray.nodes() if n["Alive"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Two one-CPU Ray nodes and the tracking server on free ports; both stopped after the module."""
    root, mp = tmp_path_factory.mktemp("cluster"), pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "token")  # the nodes' mode, set before this process imports ray
    try:
        uri = tracking_server.start(root / "server", port=free_port())
        address = ray_cluster.start(root / "ray", port=free_port(), nodes=2, num_cpus=1)
        yield Cluster(address, alive_node_ids(address), uri)
    finally:
        state = ray_cluster.running(ray_cluster.ClusterPaths.under(root / "ray"))
        ray_cluster.stop(root / "ray")
        tracking_server.stop(root / "server")
        mp.undo()
    assert state is not None and not any(ray_cluster.session_pids(n["sid"]) for n in state["nodes"])
    assert not Path(state["temp_dir"]).exists()  # nothing of the cluster is left behind


@dataclass(frozen=True)
class Launched:
    """A multirun launched onto the cluster: its process and its sweep's parent and job runs."""

    proc: subprocess.CompletedProcess
    parents: list[Run]
    jobs: list[Run]

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr


def on_cluster(cluster: Cluster, tmp: Path, *overrides: str) -> Launched:
    """`python -m rlpipe.train -m` onto the cluster, recording into the server."""
    folder = tmp / "multirun"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_ADDRESS", cluster.address)  # what `address: auto` joins
        mp.setenv("RAY_AUTH_MODE", "token")  # a driver given the address does not turn it on by itself
        proc = cli(
            "rlpipe.train", "-m", "hydra/launcher=ray_cluster", "tracking=server",
            f"tracking.uri={cluster.uri}", f"hydra.sweep.dir={folder}", f"checkpoint.dir={tmp}/checkpoints",
            *overrides,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tracker, sweep_id = Tracker(cluster.uri, "rlpipe"), sweep_id_for(str(folder))
    parents = tracker.search(f"tags.`{T.SWEEP_ID}` = '{sweep_id}' and tags.`{T.KIND}` = '{T.SWEEP}'")
    return Launched(proc, parents, queries.job_runs(tracker, sweep_id))


@pytest.fixture(scope="module")
def sweep(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Launched:
    """4 smoke jobs on 2 one-CPU nodes: two run at once, one on each node."""
    return on_cluster(cluster, tmp_path_factory.mktemp("sweep"), "experiment=smoke", "seed=1,2,3,4")


@pytest.mark.slow
@needs_extras
def test_the_cluster_has_two_nodes_of_one_cpu(cluster: Cluster):
    assert len(cluster.node_ids) == 2
    with driver(cluster.address) as ray:
        assert ray.cluster_resources()["CPU"] == 2.0


@pytest.mark.slow
@needs_extras
def test_the_sweeps_jobs_ran_on_both_nodes_and_finished_in_postgresql(cluster: Cluster, sweep: Launched):
    assert "Connecting to existing Ray cluster" in sweep.output  # no Ray of its own
    assert sorted(r.data.tags[T.SEED] for r in sweep.jobs) == ["1", "2", "3", "4"]
    assert {r.info.status for r in sweep.jobs} == {"FINISHED"}
    assert {r.data.tags[T.RAY_NODE] for r in sweep.jobs} == cluster.node_ids  # both nodes ran jobs
    assert {r.data.tags["mlflow.parentRunId"] for r in sweep.jobs} == {p.info.run_id for p in sweep.parents}


@pytest.mark.slow
@needs_extras
def test_the_sweep_step_ran_once_and_its_report_names_every_job(cluster: Cluster, sweep: Launched, tmp_path):
    (parent,) = sweep.parents
    assert parent.info.status == "FINISHED" and T.RAY_NODE not in parent.data.tags  # the launching process
    client = MlflowClient(cluster.uri)
    assert {f.path for f in client.list_artifacts(parent.info.run_id, "sweep")} >= {
        "sweep/report.md", "sweep/report.json"
    }  # fmt: skip
    report = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "sweep/report.json", str(tmp_path))).read_text()
    )
    reported = {run for c in report["configurations"] for run in c["runs"]}
    assert reported == {r.info.run_id for r in sweep.jobs}
    assert sweep.output.count("champion:") == 1


@pytest.mark.slow
@needs_extras
def test_a_pbt_population_runs_its_rounds_on_the_cluster(cluster: Cluster, tmp_path: Path):
    pbt = on_cluster(
        cluster, tmp_path, "experiment=pbt", "pbt.population=2", "pbt.rounds=2", "pbt.interval=512", *SMALL
    )
    ledger = json.loads((tmp_path / "multirun" / "pbt" / "pbt.json").read_text())
    assert ledger["rounds_done"] == 2 and len(ledger["scores"]) == 2
    assert sorted(r.data.tags[T.ROLE] for r in pbt.jobs) == ["pbt-0", "pbt-1"]  # one run per member
    assert {r.info.status for r in pbt.jobs} == {"FINISHED"}
    assert [p.info.status for p in pbt.parents] == ["FINISHED"]
    assert all(r.data.tags.get(T.MODEL_VERSION) for r in pbt.jobs)  # the last round registered each
    # the members of a round run at once, one on each node (the tag: the node of the last round)
    assert {r.data.tags[T.RAY_NODE] for r in pbt.jobs} == cluster.node_ids
