"""The registry lock left by a dead holder: broken at once by the next waiter, released by reap."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from rlpipe.tracking import registry_lock as lock_module
from rlpipe.tracking.process import process_token
from rlpipe.tracking.registry import Registry
from rlpipe.tracking.registry_lock import RegistryLock, release_dead_locks, why_gone
from rlpipe.tracking.tracker import Tracker
from tests.support.project import ROOT


def dead_token() -> str:
    """The process token of a process that has ended."""
    code = "from rlpipe.tracking.process import process_token; print(process_token())"
    child = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return child.stdout.strip()


def broken_records(client: MlflowClient, model: str) -> list[str]:
    tags = client.get_registered_model(model).tags
    return [v for k, v in sorted(tags.items()) if k.startswith("rlpipe.lock_broken.")]


@pytest.fixture
def client(tracking_uri) -> MlflowClient:
    return Tracker(tracking_uri, "exp").client


def test_the_lock_names_its_holders_process(client):
    with RegistryLock(client, "m"):
        assert client.get_registered_model("m.lock").tags["rlpipe.process"] == process_token()


def test_a_lock_released_while_the_store_refuses_its_create_is_taken_on_the_next_try(client, monkeypatch):
    """Refused a name that exists, MLflow's store reads it back for its message; released meanwhile, the
    create answers RESOURCE_DOES_NOT_EXIST (seen through a PostgreSQL server): the waiter tries again."""
    real, answers = client.create_registered_model, []

    def racing_create(name, **kwargs):
        if not answers:
            answers.append("not found")
            raise MlflowException(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST)
        return real(name, **kwargs)

    monkeypatch.setattr(client, "create_registered_model", racing_create)
    with RegistryLock(client, "m", wait_s=30):
        assert client.get_registered_model("m.lock").tags["rlpipe.process"] == process_token()
    assert answers == ["not found"]
    monkeypatch.setattr(client, "create_registered_model", lambda name, **kw: (_ for _ in ()).throw(
        MlflowException("boom", INTERNAL_ERROR)))  # fmt: skip
    with pytest.raises(MlflowException, match="boom"), RegistryLock(client, "m", wait_s=30):
        pass  # any other refusal is not contention: it is raised at once


def test_a_lock_whose_holder_died_is_broken_at_once_by_the_next_sweep_step(client, monkeypatch):
    monkeypatch.setattr(lock_module, "LOCK_STALE_S", 3600.0)  # the age rule cannot be what breaks it
    token = dead_token()
    client.create_registered_model("m", description="the policies")
    client.create_registered_model("m.lock", tags={"rlpipe.process": token}, description="held by x pid 1")
    start = time.monotonic()
    Registry(client, "m").apply_sweep("s", None, [], {})  # takes the lock: waits for no one
    assert time.monotonic() - start < 5.0
    assert [m.name for m in client.search_registered_models()] == ["m"]  # taken and released
    (record,) = broken_records(client, "m")
    assert f"its holder's process ({token}) is gone (held by x pid 1)" in record


def test_reap_releases_the_locks_of_dead_holders_with_a_record_and_keeps_live_ones(client):
    token = dead_token()
    client.create_registered_model("m")
    client.create_registered_model("m.lock", tags={"rlpipe.process": token}, description="held by x")
    client.create_registered_model("n.lock", tags={"rlpipe.process": process_token()}, description="held")
    assert release_dead_locks(client) == ["m.lock"]
    assert sorted(m.name for m in client.search_registered_models()) == ["m", "n.lock"]
    (record,) = broken_records(client, "m")
    assert record.endswith(f"its holder's process ({token}) is gone (held by x)")
    assert release_dead_locks(client) == []  # nothing left to release


def test_a_lock_held_from_another_host_is_broken_only_when_stale(client):
    client.create_registered_model("m.lock", tags={"rlpipe.process": "another-host:42:7"})
    lock = client.get_registered_model("m.lock")
    born = lock.creation_timestamp / 1000.0
    assert why_gone(lock, born + 60) is None  # it may still be working
    assert why_gone(lock, born + lock_module.LOCK_STALE_S + 1) == (
        f"{lock_module.LOCK_STALE_S + 1:.0f} s old, held from another-host:42:7 "
        f"(over {lock_module.LOCK_STALE_S:.0f} s)"
    )
