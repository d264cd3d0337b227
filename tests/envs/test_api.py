"""The env views: gymnasium / SB3 API conformance, and the batched VecTradingEnv stepping exactly
like N single TradingEnvs (and like SB3's own DummyVecEnv over them)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from rlpipe.data.data_config import Segment
from rlpipe.data.features import fit_stats, normalise, raw_features
from rlpipe.data.synthetic import make_synthetic_market
from rlpipe.envs.market import Market, make_market
from rlpipe.envs.rewards import RewardConfig
from rlpipe.envs.sim_config import SimConfig
from rlpipe.envs.trading_env import TradingEnv
from rlpipe.envs.vec_env import VecTradingEnv

WINDOWS = [(48, 250), (300, 480)]
VEC_ONLY_KEYS = {"episode", "terminal_observation", "TimeLimit.truncated"}


@pytest.fixture(scope="module")
def market() -> Market:
    df = make_synthetic_market(seed=2, segments=[Segment("bull", 10), Segment("bear", 10)])
    raw = raw_features(df)
    mask = np.zeros(len(df), bool)
    for lo, hi in WINDOWS:
        mask[lo:hi] = True
    return make_market(df, normalise(raw, fit_stats(raw, mask)))


def sim_cfg(kind: str, **kw: object) -> SimConfig:
    base: dict = {
        "kind": kind,
        "n_envs": 4,
        "episode_bars": 20,
        "reset_margin_bars": 4,
        "maker_fee": -0.0001,
    }
    return SimConfig(**{**base, **kw})


SHAPED = RewardConfig(
    kind="shaped",
    hold_limit_hours=5,
    hold_penalty=0.1,
    flat_limit_hours=3,
    flat_penalty=0.05,
    terminal_penalty=1.0,
)


# ------------------------------------------------------------------------------ API conformance
def _checker_warnings(fn: Callable[[], None]) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    # Without gymnasium.make there is no spec to test render modes against; nothing else may warn.
    return [str(w.message) for w in caught if "render modes" not in str(w.message)]


@pytest.mark.parametrize("kind", ["baseline", "management"])
def test_trading_env_passes_gymnasium_and_sb3_checkers(market: Market, kind: str) -> None:
    env = TradingEnv(market, sim_cfg(kind, random_initial_position=0.5), SHAPED, WINDOWS)
    assert _checker_warnings(lambda: gym_check_env(env)) == []
    assert _checker_warnings(lambda: sb3_check_env(env)) == []
    assert env.observation_space.shape == (market.n_features + (5 if kind == "baseline" else 7),)
    space, actions = env.observation_space, env.action_space
    assert isinstance(space, gym.spaces.Box) and space.dtype == np.float32
    assert (space.low == -3).all() and (space.high == 3).all()
    assert isinstance(actions, gym.spaces.Discrete) and actions.n == 3


@pytest.mark.parametrize("kind", ["baseline", "management"])
def test_same_seed_gives_the_same_episode(market: Market, kind: str) -> None:
    def rollout(seed: int) -> tuple[list, list]:
        env = TradingEnv(
            market, sim_cfg(kind, random_initial_position=0.5, episode_bars_std=4), SHAPED, WINDOWS
        )
        obs, _ = env.reset(seed=seed)
        actions = np.random.default_rng(seed).integers(0, 3, 200)
        observations, rewards = [obs], []
        for a in actions:
            obs, r, term, trunc, _ = env.step(int(a))
            observations.append(obs)
            rewards.append(r)
            if term or trunc:
                obs, _ = env.reset()
                observations.append(obs)
        return observations, rewards

    a, b = rollout(5), rollout(5)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True)) and a[1] == b[1]
    c = rollout(6)
    assert not all(np.array_equal(x, y) for x, y in zip(a[0], c[0], strict=False))


def test_trading_env_episode_has_fixed_length_inside_a_training_window(market: Market) -> None:
    env = TradingEnv(market, sim_cfg("management"), RewardConfig(), WINDOWS)
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        start = int(env.sim.start[0])
        assert any(lo <= start and start + 20 <= hi - 1 - 4 for lo, hi in WINDOWS)
        assert np.array_equal(obs[: market.n_features], market.features[start])
        assert info["equity"] == 1.0
        steps, done = 0, False
        while not done:
            obs, _, term, trunc, info = env.step(0)
            steps += 1
            done = term or trunc
        assert steps == 20 and trunc and not term
        assert int(env.sim.t[0]) == start + 20


# ------------------------------------------------------------------------------ vec equivalence
def _rollout_vec(venv: VecEnv, actions: np.ndarray) -> list:
    out: list[Any] = [("reset", venv.reset())]
    for a in actions:
        out.append(venv.step(a))
    return out


def _rollout_singles(envs: list[TradingEnv], seed: int, actions: np.ndarray) -> list:
    """SB3's DummyVecEnv semantics by hand: reset env i with seed + i, auto-reset unseeded."""
    out: list[Any] = [("reset", np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]))]
    returns = np.zeros(len(envs))
    lengths = np.zeros(len(envs), int)
    for a in actions:
        obs, rews, dones, infos = [], [], [], []
        for i, env in enumerate(envs):
            o, r, term, trunc, info = env.step(int(a[i]))
            returns[i] += r
            lengths[i] += 1
            if term or trunc:
                info["terminal_observation"] = o
                info["TimeLimit.truncated"] = trunc and not term
                info["episode"] = {"r": returns[i], "l": int(lengths[i])}
                returns[i], lengths[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
            rews.append(r)
            dones.append(term or trunc)
            infos.append(info)
        out.append((np.stack(obs), np.array(rews), np.array(dones), infos))
    return out


def _assert_same_trajectory(vec: list, single: list, episode_r_tol: float = 0.0) -> int:
    assert np.array_equal(vec[0][1], single[0][1])
    episodes = 0
    for step, ((vo, vr, vd, vi), (so, sr, sd, si)) in enumerate(zip(vec[1:], single[1:], strict=True)):
        assert np.array_equal(vo, so), f"obs at step {step}"
        assert vr.dtype == np.float32
        assert np.array_equal(vr, sr.astype(np.float32)), f"rewards at step {step}"
        assert np.array_equal(vd, sd), f"dones at step {step}"
        for i, (a, b) in enumerate(zip(vi, si, strict=True)):
            assert {k: v for k, v in a.items() if k not in VEC_ONLY_KEYS} == {
                k: v for k, v in b.items() if k not in VEC_ONLY_KEYS
            }, f"info of env {i} at step {step}"
            assert ("terminal_observation" in a) == bool(vd[i]) == ("terminal_observation" in b)
            if vd[i]:
                episodes += 1
                assert np.array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"]
                assert a["episode"]["l"] == b["episode"]["l"]
                assert a["episode"]["r"] == pytest.approx(
                    b["episode"]["r"], rel=episode_r_tol, abs=episode_r_tol
                )
    return episodes


@pytest.mark.parametrize(
    ("kind", "reward", "extra"),
    [
        ("baseline", RewardConfig(kind="pnl"), {"stake": 1.0, "max_stake": 1.0}),
        (
            "management",
            RewardConfig(kind="pnl_fees"),
            {"close_mode": "one", "random_initial_position": 0.5},
        ),
        ("management", SHAPED, {"episode_bars_std": 5.0, "max_stake": 0.5}),
    ],
    ids=["baseline-pnl", "management-pnl_fees", "management-shaped"],
)
@pytest.mark.parametrize("seed", [0, 17, 123])
def test_vec_env_steps_exactly_like_single_envs(
    market: Market, kind: str, reward: RewardConfig, extra: dict, seed: int
) -> None:
    n, steps = 4, 90
    cfg = sim_cfg(kind, **extra)
    actions = np.random.default_rng(seed).integers(0, 3, size=(steps, n))

    venv = VecTradingEnv(market, cfg, reward, WINDOWS, n_envs=n)
    venv.seed(seed)
    venv.set_progress(0.6)
    envs = [TradingEnv(market, cfg, reward, WINDOWS) for _ in range(n)]
    for env in envs:
        env.set_progress(0.6)

    episodes = _assert_same_trajectory(_rollout_vec(venv, actions), _rollout_singles(envs, seed, actions))
    assert episodes >= n * 3  # auto-resets happened in every env, several times


@pytest.mark.parametrize("seed", [3, 42])
def test_vec_env_matches_sb3_dummy_vec_env_of_monitored_trading_envs(market: Market, seed: int) -> None:
    n, steps = 3, 70
    cfg = sim_cfg("management", random_initial_position=0.3)
    actions = np.random.default_rng(seed).integers(0, 3, size=(steps, n))
    venv = VecTradingEnv(market, cfg, RewardConfig(), WINDOWS, n_envs=n)
    venv.seed(seed)
    dummy = DummyVecEnv([lambda: Monitor(TradingEnv(market, cfg, RewardConfig(), WINDOWS)) for _ in range(n)])
    dummy.seed(seed)
    # Monitor rounds the episode return to 6 decimals.
    episodes = _assert_same_trajectory(
        _rollout_vec(venv, actions), _rollout_vec(dummy, actions), episode_r_tol=1e-6
    )
    assert episodes >= n * 2


def test_vec_env_rows_draw_from_their_own_seeded_generators(market: Market) -> None:
    cfg = sim_cfg("baseline")
    venv = VecTradingEnv(market, cfg, RewardConfig(), WINDOWS, n_envs=3)
    venv.seed(10)
    venv.reset()
    starts = venv.sim.start.copy()
    for i in range(3):
        env = TradingEnv(market, cfg, RewardConfig(), WINDOWS)
        env.reset(seed=10 + i)
        assert env.sim.start[0] == starts[i]
    venv.seed(10)
    venv.reset()
    assert np.array_equal(venv.sim.start, starts)
    assert len(set(starts.tolist())) == 3


def test_vec_env_episode_info_sums_rewards_and_counts_steps(market: Market) -> None:
    venv = VecTradingEnv(market, sim_cfg("management"), RewardConfig(), WINDOWS, n_envs=2)
    venv.seed(1)
    venv.reset()
    total = np.zeros(2)
    rng = np.random.default_rng(1)
    for k in range(20):
        _, rewards, dones, infos = venv.step(rng.integers(0, 3, 2))
        total += rewards
        assert dones.all() == (k == 19)
    for i in range(2):
        assert infos[i]["episode"]["l"] == 20
        assert infos[i]["episode"]["r"] == pytest.approx(total[i], rel=1e-5, abs=1e-6)
        assert infos[i]["TimeLimit.truncated"] is True
        assert infos[i]["terminal_observation"].shape == venv.observation_space.shape
    assert venv.get_attr("num_envs") == [2, 2]
    assert venv.env_is_wrapped(Monitor) == [False, False]


def test_progress_is_kept_by_each_env_view_and_sets_the_penalties_of_later_steps(market: Market) -> None:
    single = TradingEnv(market, sim_cfg("management"), SHAPED, WINDOWS)
    vec = VecTradingEnv(market, sim_cfg("management"), SHAPED, WINDOWS, n_envs=2)
    assert single.progress == vec.progress == 0.0
    single.reset(seed=0)
    vec.seed(0)
    vec.reset()
    single.set_progress(0.5)
    vec.env_method("set_progress", 0.5)  # how code that holds only a VecEnv reaches it
    assert single.progress == vec.progress == 0.5
    assert not hasattr(single.sim, "progress") and not hasattr(vec.sim, "progress")
    hold = np.zeros(2, np.int64)

    def flat_penalties() -> list[float]:
        _, _, _, _, info = single.step(0)
        _, _, _, infos = vec.step(hold)
        return [info["reward_flat_penalty"]] + [i["reward_flat_penalty"] for i in infos]

    # flat 1..4 hours: penalised beyond 3 hours, by 0.05 x strength (rate 1: strength = progress)
    assert np.array([flat_penalties() for _ in range(4)]) == pytest.approx(
        np.array([[0.0] * 3, [0.0] * 3, [0.0] * 3, [-0.025] * 3])
    )
    single.set_progress(1.0)
    vec.set_progress(1.0)
    assert flat_penalties() == pytest.approx([-0.05] * 3)
