"""Paper trading: bar by bar on bars the model never saw, exactly the backtest of the same bars,
refused on bars it trained or validated on, resumed after a kill without acting twice on a bar,
and following a file that grows."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient

import rlpipe.forward.session as session_module
from rlpipe.cli.compose import train_job
from rlpipe.data.data_config import DataSpec
from rlpipe.data.features import HISTORY, FeatureStream, normalise, raw_features
from rlpipe.data.slices import Slice, Window
from rlpipe.data.sources import load_data
from rlpipe.envs.market import make_market
from rlpipe.envs.sim_config import SimConfig
from rlpipe.errors import PolicyError, SliceError, Terminated
from rlpipe.evaluation.backtest import backtest
from rlpipe.jobs.job_config import PaperConfig, PaperJob
from rlpipe.jobs.paper_job import run_paper
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.train_job import run_train
from rlpipe.policy.resolved import load_policy, resolve_model
from rlpipe.tracking import tags as T
from rlpipe.tracking.tracker import Tracker
from tests.support.project import CONF, ROOT

FORWARD = ("2022-06-20", "2022-09-20")  # after the smoke model's validation windows and embargo


@dataclasses.dataclass(frozen=True)
class Trained:
    uri: str
    model: str
    bars: pd.DataFrame
    """Every bar of the synthetic market (OHLCV)."""
    tmp: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    tmp = tmp_path_factory.mktemp("paper")
    uri = f"sqlite:///{tmp}/mlflow.db"
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", "device=cpu", f"tracking.uri={uri}",
                                          f"checkpoint.dir={tmp}/ck", "seed=3"])  # fmt: skip
    job = train_job(cfg)
    result = run_train(job, RunContext(root=ROOT))
    bars = load_data(job.data)[["open", "high", "low", "close", "volume"]]
    return Trained(uri, f"models:/rlpipe-policy/{result.model_version}", bars, tmp)


def _file(trained: Trained, path: Path, lo: str = FORWARD[0], hi: str = FORWARD[1]) -> DataSpec:
    trained.bars.loc[lo:hi].to_csv(path, index_label="timestamp")
    return DataSpec(source="csv", path=str(path))


def _job(trained: Trained, data: DataSpec, tmp: Path, **kw) -> PaperJob:
    from rlpipe.tracking.config import TrackingConfig

    paper = PaperConfig(**{k: kw.pop(k) for k in list(kw) if k in PaperConfig.__dataclass_fields__})
    return PaperJob(trained.model, data, TrackingConfig(uri=trained.uri), paper=paper, root=tmp, **kw)


def _decisions(uri: str, run_id: str, tmp: Path) -> pd.DataFrame:
    local = MlflowClient(uri).download_artifacts(run_id, "paper/decisions.csv", str(tmp))
    return pd.read_csv(local)


def test_the_feature_stream_equals_the_batch_features_on_every_bar(trained):
    bars = trained.bars.iloc[:3000]
    batch = raw_features(bars).to_numpy()
    stream = FeatureStream()
    rows = [stream.push(*bar) for bar in bars[["close", "high", "low", "volume"]].to_numpy()]
    assert np.array_equal(np.array(rows), batch, equal_nan=True)  # bit for bit, warm-up NaNs included


def test_paper_trading_a_finished_file_is_exactly_the_backtest_of_the_same_bars(trained, tmp_path):
    data = _file(trained, tmp_path / "new.csv")
    result = run_paper(_job(trained, data, tmp_path, save_every=300))
    tracker = Tracker(trained.uri, "rlpipe")
    policy = load_policy(tracker, resolve_model(tracker, trained.model))
    df = load_data(data)
    market = make_market(df, normalise(raw_features(df), policy.stats))
    window = Window(
        Slice("forward", "test", "bull", df.index[HISTORY - 1], df.index[-1]), HISTORY - 1, len(df)
    )
    agent, *baselines = backtest(
        market, SimConfig(**policy.meta["sim"]), [window], policy.observation_policy(), 0
    )
    hold = next(r for r in baselines if r.policy == "buy_and_hold")
    decided = _decisions(trained.uri, result.run_id, tmp_path).drop_duplicates("bar", keep="last")
    traded = decided[decided["bar"] >= HISTORY - 1]
    assert np.array_equal(traded["equity"].to_numpy(), agent.equity)  # every bar, not just the end
    assert result.total == agent.metrics["total"] and result.hold_total == hold.metrics["total"]
    assert (decided["action"].iloc[: HISTORY - 1] == "warmup").all() and result.bars == len(df)
    run = MlflowClient(trained.uri).get_run(result.run_id)
    assert run.data.tags[T.KIND] == "paper" and run.info.status == "FINISHED"
    assert run.data.metrics["paper/summary/total"] == agent.metrics["total"]
    equity = MlflowClient(trained.uri).get_metric_history(result.run_id, "paper/equity")
    assert len({m.step for m in equity}) == len(df)  # one point per bar (the close at the end: one more)
    assert max(m.timestamp for m in equity) == int(df.index[-1].timestamp() * 1000)
    version = MlflowClient(trained.uri).get_model_version("rlpipe-policy", trained.model.rsplit("/", 1)[1])
    assert version.tags[T.LAST_PAPER_RUN] == result.run_id


@pytest.mark.parametrize(("lo", "role"), [("2021-12-01", "training"), ("2022-03-01", "validation")])
def test_bars_the_model_trained_or_validated_on_are_refused_before_anything_runs(trained, tmp_path, lo, role):
    data = _file(trained, tmp_path / "old.csv", lo=lo, hi="2022-07-01")
    before = len(Tracker(trained.uri, "rlpipe").search(f"tags.`{T.KIND}` = 'paper'"))
    with pytest.raises(
        SliceError, match=rf"has seen these bars: traded bars .* lie inside its {role} window"
    ):
        run_paper(_job(trained, data, tmp_path))
    assert len(Tracker(trained.uri, "rlpipe").search(f"tags.`{T.KIND}` = 'paper'")) == before


def test_bars_at_another_spacing_than_the_training_bars_are_refused(trained, tmp_path):
    path = tmp_path / "daily.csv"
    daily = (
        trained.bars.loc[FORWARD[0] :]
        .resample("1D")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
    )
    daily.to_csv(path, index_label="timestamp")
    with pytest.raises(PolicyError, match=r"trained on 1 h bars but the data's bars are 24 h apart"):
        run_paper(_job(trained, DataSpec(source="csv", path=str(path)), tmp_path))


def test_a_killed_session_resumes_after_its_last_saved_bar_and_acts_on_no_bar_twice(
    trained, tmp_path, monkeypatch
):
    data = _file(trained, tmp_path / "new.csv")
    whole = run_paper(_job(trained, data, tmp_path / "whole", save_every=250))
    real, seen = session_module.Session.on_bar, [0]

    def on_bar(self, *args):
        seen[0] += 1
        if seen[0] == 777:  # between two saves: bars 750..776 are traded again after the resume
            raise Terminated("killed by SIGTERM")
        return real(self, *args)

    monkeypatch.setattr(session_module.Session, "on_bar", on_bar)
    with pytest.raises(Terminated):
        run_paper(_job(trained, data, tmp_path / "cut", save_every=250))
    monkeypatch.undo()
    resumed = run_paper(_job(trained, data, tmp_path / "cut", save_every=250, resume=True))
    assert resumed.total == whole.total and resumed.bars == whole.bars
    mine, theirs = (_decisions(trained.uri, r.run_id, tmp_path / r.run_id) for r in (resumed, whole))
    pd.testing.assert_frame_equal(mine, theirs)  # each bar decided once, as the uninterrupted session did
    runs = Tracker(trained.uri, "rlpipe").search(f"attributes.run_id = '{resumed.run_id}'")
    assert runs[0].info.status == "FINISHED"


def test_following_a_file_that_grows_trades_each_bar_as_it_arrives(trained, tmp_path):
    bars = trained.bars.loc[FORWARD[0] : "2022-06-27"]
    path = tmp_path / "live.csv"
    bars.iloc[:100].to_csv(path, index_label="timestamp")

    def writer() -> None:
        for i in range(100, len(bars), 20):
            time.sleep(0.05)
            bars.iloc[i : i + 20].to_csv(path, mode="a", header=False)

    thread = threading.Thread(target=writer)
    thread.start()
    data = DataSpec(source="csv", path=str(path))
    followed = run_paper(_job(trained, data, tmp_path / "follow", follow=True, poll_s=0.02, idle_stop_s=1.0))
    thread.join()
    finished = run_paper(_job(trained, data, tmp_path / "file"))
    assert followed.bars == finished.bars == len(bars)
    assert followed.total == finished.total


def _momentum_loses(bars: pd.DataFrame) -> pd.DataFrame:
    """The same bars with each bar's move undoing the one before: the drift of every move flips
    sign, and a policy that learned to follow the planted momentum loses."""
    r = np.log(bars["close"]).diff().fillna(0.0).to_numpy()
    close = bars["close"].iloc[0] * np.exp(np.cumsum(np.concatenate([[0.0], -r[:-1]])))
    out = bars.mul(close / bars["close"].to_numpy(), axis=0)
    out["volume"] = bars["volume"]
    out["high"] = np.maximum(out["high"], out[["open", "close"]].max(axis=1))
    out["low"] = np.minimum(out["low"], out[["open", "close"]].min(axis=1))
    return out


@pytest.mark.slow  # ~30 s: a model trained long enough to follow the planted momentum
def test_a_champion_whose_market_flips_after_training_is_degraded_and_rolled_back(trained, tmp_path):
    from rlpipe.tracking.config import RegistryConfig, TrackingConfig
    from rlpipe.tracking.registry import Registry

    with initialize_config_dir(str(CONF), version_base="1.3"):
        where = [f"tracking.uri={trained.uri}", f"checkpoint.dir={tmp_path}/ck"]
        overrides = ["experiment=smoke", "device=cpu", *where, "seed=2", "timesteps=150000"]
        cfg = compose("train", overrides=overrides)
    skilled = run_train(train_job(cfg), RunContext(root=ROOT)).model_version
    first = trained.model.rsplit("/", 1)[1]
    registry = Registry(Tracker(trained.uri, "rlpipe").client, "rlpipe-policy")
    registry.apply_sweep("week-1", first, [], {first: "week-1 champion"})
    registry.apply_sweep("week-2", skilled, [], {skilled: "week-2 champion"})
    path = tmp_path / "flipped.csv"
    _momentum_loses(trained.bars.loc[FORWARD[0] :]).to_csv(path, index_label="timestamp")
    data, tracking = DataSpec(source="csv", path=str(path)), TrackingConfig(uri=trained.uri)
    rollback = RegistryConfig(on_degraded="rollback")
    job = PaperJob("models:/rlpipe-policy@champion", data, tracking, registry=rollback, root=tmp_path)
    result = run_paper(job)
    version = MlflowClient(trained.uri).get_model_version("rlpipe-policy", skilled)
    assert result.model_version == skilled and version.tags[T.HEALTH] == "degraded"
    assert registry.alias_version("champion") == first  # the previous champion is back
    assert version.tags[T.HEALTH_ACTION] == f"rolled back to v{first}"
    history = " ".join(text for _, _, text in registry.history([first, skilled]))
    assert "health degraded after" in history


def test_a_huge_move_planted_after_a_bar_changes_no_decision_up_to_that_bar(trained, tmp_path):
    bars = trained.bars.loc[FORWARD[0] : "2022-07-20"]
    cut = bars.index[400]
    planted = bars.copy()
    planted.loc[planted.index > cut, ["open", "high", "low", "close"]] *= 3.0  # a 200% jump right after t
    runs = []
    for name, frame in (("plain", bars), ("planted", planted)):
        frame.to_csv(tmp_path / f"{name}.csv", index_label="timestamp")
        data = DataSpec(source="csv", path=str(tmp_path / f"{name}.csv"))
        result = run_paper(_job(trained, data, tmp_path / name, start=str(bars.index[100])))
        runs.append(_decisions(trained.uri, result.run_id, tmp_path / name))
    plain, moved = (r[r["bar"] <= 400].drop_duplicates("bar") for r in runs)
    pd.testing.assert_frame_equal(plain, moved)  # decisions, fills and equity up to t: the same
    assert (plain["action"].iloc[:100] == "warmup").all() and plain["action"].iloc[100] != "warmup"
    assert runs[1]["equity"].iloc[-1] != runs[0]["equity"].iloc[-1]  # the move did reach later bars
