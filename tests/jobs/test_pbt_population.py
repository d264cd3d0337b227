"""Population-based training's exploit/explore step, its ledger and the copy of a member's state."""

from __future__ import annotations

import math

import pytest

from rlpipe.errors import CheckpointError, ConfigError
from rlpipe.jobs.pbt_population import Ledger, PBTSpec, copy_state, exploit_explore, member_folder
from rlpipe.jobs.state_folder import Saved


def test_the_bottom_fifth_copies_the_top_fifth_with_hyperparameters_moved_20_percent():
    spec = PBTSpec(population=10, fraction=0.2, perturb=0.2)
    scores = [0.5, 2.0, math.nan, 1.0, 3.0, -1.0, 0.0, 0.7, 0.2, 1.5]
    hyper = [{"agent.learning_rate": 1e-4 * (i + 1)} for i in range(10)]
    copies = exploit_explore(spec, 0, scores, hyper)
    assert [(c.member, c.source) for c in copies] == [(2, 4), (5, 1)]  # NaN is the worst: it copies the best
    for c in copies:
        ratio = c.hyper["agent.learning_rate"] / hyper[c.source]["agent.learning_rate"]
        assert ratio == pytest.approx(0.8) or ratio == pytest.approx(1.2)
        assert type(c.hyper["agent.learning_rate"]) is float  # written into a Hydra override
    assert exploit_explore(spec, 0, scores, hyper) == copies  # seeded by (seed, round): a rerun alike
    assert PBTSpec(population=3).replaced == 1
    ints = exploit_explore(spec, 0, scores, [{"agent.n_epochs": 4} for _ in range(10)])
    assert {c.hyper["agent.n_epochs"] for c in ints} <= {3, 5}  # an integer keyword stays an integer


def test_a_copy_takes_the_sources_state_and_keeps_its_own_run(tmp_path):
    for member, run in ((0, "run-a"), (1, "run-b")):
        folder = member_folder(tmp_path, member)
        sha = folder.write_state(lambda f, run=run: f.write(run.encode()))
        folder.record(Saved(run, 100 * (member + 1), sha, round=0, score=1.0 + member))
    source = member_folder(tmp_path, 1).read()
    copy_state(tmp_path, source=1, member=0)
    assert source is not None and source.state_sha256 is not None
    assert member_folder(tmp_path, 0).state_file(source.state_sha256).read_bytes() == b"run-b"
    assert len(list(member_folder(tmp_path, 0).path.glob("state*"))) == 1  # run-a's state is gone
    assert source is not None and member_folder(tmp_path, 0).read() == Saved(
        "run-a", 200, source.state_sha256, round=0, score=1.0
    )  # the source's state and steps; its own run, round and score
    assert not [p.name for p in member_folder(tmp_path, 0).path.iterdir() if ".tmp" in p.name]
    with pytest.raises(CheckpointError, match="member 2 or 0 has no saved state"):
        copy_state(tmp_path, source=2, member=0)


def test_a_corrupt_member_manifest_is_refused_naming_it(tmp_path):
    folder = member_folder(tmp_path, 1)
    folder.path.mkdir(parents=True)
    (folder.path / "checkpoint.json").write_text('{"run_id": "r", "num_timesteps": 1}')
    with pytest.raises(
        CheckpointError, match=r"member-1/checkpoint\.json is unreadable \('sha256'\); delete"
    ):
        folder.read()


def test_the_ledger_round_trips_and_a_corrupt_one_is_refused(tmp_path):
    ledger = Ledger(1, [{"agent.learning_rate": 3e-4}], [{"round": 0}], [[1.0, 2.0]])
    ledger.save(tmp_path)
    assert Ledger.read(tmp_path) == ledger
    (tmp_path / "pbt.json").write_text("{")
    with pytest.raises(CheckpointError, match=r"PBT ledger .*pbt\.json is unreadable"):
        Ledger.read(tmp_path)


def test_bad_population_values_are_refused():
    with pytest.raises(ConfigError, match="population >= 2"):
        PBTSpec(population=1).check()
    with pytest.raises(ConfigError, match=r"pbt\.fraction=0\.8"):
        PBTSpec(fraction=0.8).check()
