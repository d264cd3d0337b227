"""The observation layout: one list of position-variable names per env kind, and the simulator's
observation rows written in exactly that order."""

from __future__ import annotations

import numpy as np
import pytest

from rlpipe.data.features import FeatureStats
from rlpipe.envs.layout import POSITION_VARS, layout_of, position_vars
from rlpipe.envs.market import Market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim import HOLD, LONG, BatchSim
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import ConfigError
from rlpipe.policy.observations import ObservationSpec

approx = pytest.approx


def flat_market(n: int = 12) -> Market:
    """Close 100, every maker buy at 99 fills (next low 98); two constant features."""
    return Market(
        high=np.full(n, 102.0),
        low=np.full(n, 98.0),
        close=np.full(n, 100.0),
        bid=np.full(n, 99.0),
        ask=np.full(n, 101.0),
        features=np.tile(np.array([[0.5, -0.25]], np.float32), (n, 1)),
        hours_per_bar=1.0,
        bars_per_year=8766.0,
    )


def test_each_env_kind_has_its_named_position_variables() -> None:
    assert position_vars("baseline") == (
        "long",
        "short",
        "unrealised",
        "hours_in_position",
        "hours_since_close",
    )
    assert position_vars("management") == (
        "long",
        "short",
        "size",
        "unrealised",
        "avg_open_hours",
        "last_open_hours",
        "hours_since_close",
    )
    assert position_vars("dummy") == POSITION_VARS["baseline"]  # dummy trains on the baseline's spaces
    assert [SimConfig(kind=k).n_position_vars for k in ("baseline", "management", "dummy")] == [5, 7, 5]


def test_unknown_env_kind_has_no_layout() -> None:
    with pytest.raises(ConfigError, match=r"env\.kind='hedge'"):
        position_vars("hedge")
    with pytest.raises(ConfigError, match=r"env\.kind='hedge'; expected baseline, management or dummy"):
        SimConfig(kind="hedge")  # refused by the same mapping, before anything is built


def test_each_env_kind_maps_to_the_layout_a_policy_records_and_reads() -> None:
    assert [layout_of(k) for k in ("baseline", "management", "dummy")] == [
        "baseline",
        "management",
        "baseline",
    ]
    stats = FeatureStats(("a",), (0.0,), (1.0,)).to_dict()
    sim = SimConfig(kind="dummy").__dict__
    meta = {"env_kind": layout_of("dummy"), "feature_stats": stats, "sim": sim, "bar_hours": 1.0}
    spec = ObservationSpec.from_meta(meta)  # what a served policy reads back
    assert spec.layout == "baseline" and spec.obs_dim == 1 + len(POSITION_VARS["baseline"])


@pytest.mark.parametrize("kind", ["baseline", "management", "dummy"])
def test_observation_rows_hold_the_features_then_the_named_position_variables(kind: str) -> None:
    cfg = SimConfig(kind=kind, n_envs=1, stake=0.1, max_stake=0.5, maker_fee=0.0, hours_scale=4.0)
    sim = BatchSim(flat_market(), cfg, RewardConfig(), 1)
    sim.reset_rows(np.array([0]), np.array([0]), np.array([11]))
    for a in [LONG, HOLD, LONG, HOLD]:  # stakes open at bars 1 and 3 at 99; now bar 4, close 100
        sim.step(np.array([a]))
    obs = sim.observe()[0]
    names = position_vars(kind)
    assert obs.shape == (2 + len(names),)
    assert obs[:2].tolist() == [0.5, -0.25]
    named = dict(zip(names, obs[2:].tolist(), strict=True))
    expected = {
        "long": 1.0,
        "short": 0.0,
        "size": 0.2 / 0.5,
        "unrealised": (100 / 99 - 1) * 20.0,
        "avg_open_hours": (3 + 1) / 2 / 4.0,
        "last_open_hours": 1 / 4.0,
        "hours_in_position": 1 / 4.0,
        "hours_since_close": 0.0,
    }
    assert named == approx({k: expected[k] for k in names}, rel=1e-6)
