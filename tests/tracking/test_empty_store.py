"""A new local store is a copy of the empty store MLflow built once: the same schema, revision and
default experiment as a store MLflow builds itself; without the copy, MLflow builds it as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from rlpipe.tracking import empty_store, store


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own: the empty store is built here, once."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    empty_store.empty_store.cache_clear()
    yield tmp_path / "cache" / "rlpipe"
    empty_store.empty_store.cache_clear()


def contents(db: Path) -> tuple[list, list, list]:
    """The schema, the alembic revision and the experiments (name, stage, artifact location) of `db`."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        # each statement's lines sorted: alembic writes a rebuilt table's constraints in an order that
        # changes from one build to the next (a set's), in MLflow's own builds too
        schema = sorted((kind, name, sorted((sql or "").splitlines())) for kind, name, sql in rows)
        revision = list(con.execute("SELECT version_num FROM alembic_version"))
        experiments = sorted(con.execute("SELECT name, lifecycle_stage, artifact_location FROM experiments"))
    return schema, revision, experiments


def test_a_store_copied_from_the_empty_one_is_the_store_mlflow_builds(cache, tmp_path):
    built_by_mlflow = tmp_path / "mlflow" / "mlflow.db"
    built_by_mlflow.parent.mkdir()
    MlflowClient(
        f"sqlite:///{built_by_mlflow}"
    ).search_experiments()  # alembic's migrations, as MLflow runs them
    copied = tmp_path / "copied" / "mlflow.db"
    store.connect(f"sqlite:///{copied}")
    assert list(cache.glob("mlflow-*-empty.db"))  # it was a copy
    assert contents(copied) == contents(built_by_mlflow)


def test_the_empty_store_is_built_once_and_each_new_store_is_its_own_file(cache, tmp_path):
    for name in ("a", "b"):
        store.connect(f"sqlite:///{tmp_path}/{name}/mlflow.db").create_experiment(f"only-in-{name}")
    (empty,) = cache.glob("mlflow-*-empty.db")
    assert [name for name, *_ in contents(empty)[2]] == []  # no experiment, not even MLflow's default
    assert "only-in-a" not in {n for n, *_ in contents(tmp_path / "b" / "mlflow.db")[2]}


def test_without_a_cache_folder_mlflow_builds_the_new_store_itself(tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "not-a-folder"))
    empty_store.empty_store.cache_clear()
    try:
        client = store.connect(f"sqlite:///{tmp_path}/store/mlflow.db")
        assert [e.name for e in client.search_experiments()] == ["Default"]
    finally:
        empty_store.empty_store.cache_clear()


def test_a_local_store_is_written_ahead_so_that_an_open_read_never_holds_up_a_write(cache, tmp_path):
    db = tmp_path / "store" / "mlflow.db"
    client = store.connect(f"sqlite:///{db}", retry_s=0.5)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone() == ("wal",)
    exp = client.create_experiment("e")
    run = client.create_run(exp)
    reader = sqlite3.connect(db)  # a slow reader (a tear-sheet process at the lowest priority) mid-read
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    client.set_tag(run.info.run_id, "written", "while the read is open")  # a rollback journal: locked
    assert client.get_run(run.info.run_id).data.tags["written"] == "while the read is open"
    reader.rollback()


def test_a_store_whose_journal_cannot_change_keeps_it(tmp_path):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not sqlite")
    empty_store.write_ahead(not_a_db)  # refused by sqlite: left as it is, nothing raised
    assert not_a_db.read_text() == "not sqlite"
