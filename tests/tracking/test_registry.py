"""The registry: versions, stage + alias transitions with history, sweep promotion, rollback."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow.pyfunc import PythonModel

from rlpipe.errors import RegistryError
from rlpipe.tracking import registry_lock as lock_module
from rlpipe.tracking.registry import Registry, RegistryLock
from rlpipe.tracking.tracker import Tracker


class Constant(PythonModel):
    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


def versions(tracker: Tracker, registry: Registry, n: int, sweep_id: str, tmp: Path) -> list[str]:
    out = []
    for i in range(n):
        with tracker.run(f"{sweep_id}-{i}", {}) as run:
            folder = tmp / f"{sweep_id}-{i}"
            mlflow.pyfunc.save_model(str(folder), python_model=Constant(), pip_requirements=["mlflow"])
            model = run.log_model_dir(folder, "policy")
            out.append(
                registry.register(model, run.run_id, {"rlpipe.sweep_id": sweep_id, "rlpipe.verdict": "pass"})
            )
    return out


@pytest.fixture
def store(tracking_uri):
    tracker = Tracker(tracking_uri, "exp")
    return tracker, Registry(tracker.client, "m")


def state(registry: Registry) -> dict[str, tuple[str, tuple[str, ...], int]]:
    return {
        str(v.version): (
            v.current_stage,
            tuple(sorted(registry.version(v.version).aliases)),
            sum(k.startswith("rlpipe.transition.") for k in v.tags),
        )
        for v in registry.client.search_model_versions("name='m'")
    }


def test_registered_version_points_at_the_run_and_loads(store, tmp_path):
    tracker, registry = store
    (v,) = versions(tracker, registry, 1, "s", tmp_path)
    mv = registry.version(v)
    assert mv.tags["rlpipe.verdict"] == "pass" and mv.current_stage == "None"
    assert tracker.client.get_run(mv.run_id).info.run_name == "s-0"
    source = tracker.client.get_model_version_download_uri("m", v)
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(tmp_path / "dl"))
    assert list(mlflow.pyfunc.load_model(local).predict([[1], [2]])) == [0, 0]


def test_transition_moves_stage_and_alias_and_records_history(store, tmp_path):
    tracker, registry = store
    a, b = versions(tracker, registry, 2, "s", tmp_path)
    registry.transition(a, "Staging", "challenger", "passed run gates")
    assert registry.version(a).current_stage == "Staging" and registry.alias_version("challenger") == a
    registry.transition(b, "Staging", "challenger", "passed too")
    assert registry.alias_version("challenger") == b  # an alias points at one version
    ((_, version, text),) = registry.history([a])
    assert version == a and "Staging @challenger" in text and "passed run gates" in text
    assert registry.version(a).tags["rlpipe.stage_reason"] == "passed run gates"


def test_sweep_promotion_is_idempotent_and_archives_the_previous_champion(store, tmp_path):
    tracker, registry = store
    first = versions(tracker, registry, 2, "s1", tmp_path)
    why = {v: "test" for v in first}
    registry.apply_sweep("s1", first[0], [first[1]], why)
    once = state(registry)
    assert once[first[0]][:2] == ("Production", ("champion",))
    assert once[first[1]][:2] == ("Staging", ("challenger",))
    registry.apply_sweep("s1", first[0], [first[1]], why)  # the same decision again
    assert state(registry) == once  # nothing moved, no new transition recorded

    second = versions(tracker, registry, 1, "s2", tmp_path)
    registry.apply_sweep("s2", second[0], [], {second[0]: "better"})
    after = state(registry)
    assert after[second[0]][:2] == ("Production", ("champion",))
    assert after[first[0]][0] == "Archived"
    assert registry.version(second[0]).tags["rlpipe.previous_champion"] == first[0]


def test_rollback_restores_the_previous_champion(store, tmp_path):
    tracker, registry = store
    a, b = versions(tracker, registry, 2, "s", tmp_path)
    registry.apply_sweep("s", a, [], {a: "first"})
    with pytest.raises(RegistryError, match="first champion"):
        registry.rollback()
    registry.apply_sweep("s", b, [], {b: "second"})
    assert registry.rollback() == (a, b)
    assert registry.alias_version("champion") == a
    assert registry.version(a).current_stage == "Production"
    assert registry.version(b).current_stage == "Archived"
    assert any("rollback" in text for _, _, text in registry.history([a, b]))


def test_rollback_without_a_champion_is_refused(store):
    with pytest.raises(RegistryError, match="has no @champion"):
        store[1].rollback()


def test_a_rerun_step_that_rejects_the_sweep_withdraws_only_its_own_challengers(store, tmp_path):
    tracker, registry = store
    old = versions(tracker, registry, 2, "s0", tmp_path)
    registry.apply_sweep("s0", old[0], [old[1]], dict.fromkeys(old, "vetted"))
    (v,) = versions(tracker, registry, 1, "s", tmp_path)
    registry.apply_sweep("s", None, [v], {v: "sweep s: promote"})  # an earlier step of sweep s
    assert registry.challengers() == [v] and registry.version(old[1]).current_stage == "Archived"
    registry.apply_sweep("s", None, [], {v: "sweep: reject (failed: seed_stability)"})
    assert registry.version(v).current_stage == "None"
    assert registry.challengers() == []
    assert registry.version(v).tags["rlpipe.stage_reason"] == "sweep: reject (failed: seed_stability)"
    assert registry.alias_version("champion") == old[0]


def test_challengers_get_one_alias_each_in_rank_order(store, tmp_path):
    tracker, registry = store
    a, b, c = versions(tracker, registry, 3, "s", tmp_path)
    registry.apply_sweep("s", a, [c, b], dict.fromkeys((a, b, c), "sweep s: promote"))
    assert registry.aliases() == {"champion": a, "challenger": c, "challenger-2": b}
    assert registry.challengers() == [c, b]
    assert {registry.version(v).current_stage for v in (b, c)} == {"Staging"}


def test_a_sweep_that_promotes_nothing_leaves_the_vetted_versions_and_aliases(store, tmp_path):
    tracker, registry = store
    a, b, c = versions(tracker, registry, 3, "s1", tmp_path)
    registry.apply_sweep("s1", a, [b, c], dict.fromkeys((a, b, c), "sweep s1: promote"))
    before = state(registry)
    rejected = versions(tracker, registry, 2, "s2", tmp_path)
    registry.apply_sweep(
        "s2", None, [], dict.fromkeys(rejected, "sweep s2: reject"), dict.fromkeys(rejected, "reject")
    )
    after = state(registry)
    assert {v: after[v] for v in before} == before  # nothing of the previous sweep moved
    assert all(after[v][:2] == ("None", ()) for v in rejected)
    assert all(registry.version(v).tags["rlpipe.sweep_verdict"] == "reject" for v in rejected)


def test_a_new_champion_without_challengers_keeps_the_other_previous_challengers(store, tmp_path):
    tracker, registry = store
    a, b, c = versions(tracker, registry, 3, "s1", tmp_path)
    registry.apply_sweep("s1", a, [b, c], dict.fromkeys((a, b, c), "sweep s1"))
    (d,) = versions(tracker, registry, 1, "s2", tmp_path)
    registry.apply_sweep("s2", b, [], {b: "promoted from challenger"})  # a challenger crowned
    assert registry.aliases() == {"champion": b, "challenger": c}
    assert registry.version(a).current_stage == "Archived"
    registry.apply_sweep("s2", d, [], {d: "sweep s2"})
    assert registry.aliases() == {"champion": d, "challenger": c}


def test_new_challengers_replace_the_previous_ones(store, tmp_path):
    tracker, registry = store
    a, b, c = versions(tracker, registry, 3, "s1", tmp_path)
    registry.apply_sweep("s1", a, [b, c], dict.fromkeys((a, b, c), "sweep s1"))
    (d,) = versions(tracker, registry, 1, "s2", tmp_path)
    registry.apply_sweep("s2", None, [d], {d: "sweep s2: promote"})
    assert registry.aliases() == {"champion": a, "challenger": d}
    assert {registry.version(v).current_stage for v in (b, c)} == {"Archived"}
    assert "challengers replaced by sweep s2" in registry.version(b).tags["rlpipe.stage_reason"]


def test_sweep_verdicts_are_tagged_on_the_versions_beside_the_run_verdict(store, tmp_path):
    tracker, registry = store
    a, b = versions(tracker, registry, 2, "s", tmp_path)
    registry.apply_sweep("s", a, [], {a: "champion", b: "reject"}, {a: "promote", b: "reject"})
    tags = {v: registry.version(v).tags for v in (a, b)}
    assert (tags[a]["rlpipe.verdict"], tags[a]["rlpipe.sweep_verdict"]) == ("pass", "promote")
    assert (tags[b]["rlpipe.verdict"], tags[b]["rlpipe.sweep_verdict"]) == ("pass", "reject")


def test_the_registry_lock_is_exclusive_and_names_its_holder(store):
    client = store[0].client
    busy = r"the registry is busy: registered model 'm.lock' \(held by"
    with RegistryLock(client, "m"), pytest.raises(RegistryError, match=busy):
        RegistryLock(client, "m", wait_s=0.2).__enter__()
    with RegistryLock(client, "m", wait_s=0.2):  # released on exit
        pass
    assert [m.name for m in client.search_registered_models()] == []


def test_a_stale_lock_left_by_a_dead_process_is_broken(store, monkeypatch):
    tracker, _ = store
    tracker.client.create_registered_model("m.lock", description="held by a process that died")
    monkeypatch.setattr(lock_module, "LOCK_STALE_S", 0.0)
    with RegistryLock(tracker.client, "m", wait_s=5):
        assert tracker.client.get_registered_model("m.lock").description.startswith("held by ")


def test_evaluation_run_is_linked_to_the_version(store, tmp_path):
    tracker, registry = store
    (v,) = versions(tracker, registry, 1, "s", tmp_path)
    registry.link_evaluation(v, "run-123")
    assert registry.version(v).tags["rlpipe.last_evaluation_run"] == "run-123"
