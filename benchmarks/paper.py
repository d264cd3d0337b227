"""`make bench-paper`: how fast a paper session trades, on a year of hourly bars and bar by bar.

1. a finished file of 8,760 hourly bars (a year), after a warm-up session that pays the one-time
   imports: wall time of `run_paper`, split into the session's own work (features, policy, broker)
   and the rest (reading the file, MLflow points, decisions, state, tear sheet, health verdict);
2. following: the compute of one new bar when every bar is saved (the session's step plus the
   flush: points, decisions, state), the mean over 549 bars.

A smoke model is trained into a temporary store first. The bars continue the default market's
last bars (its test period, repeated with the timestamps moved on), so no bar is one the model saw.
Results also go to bench_results/paper.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from rlpipe.cli.compose import train_job
from rlpipe.cli.schemas import register_configs
from rlpipe.data.data_config import DataSpec
from rlpipe.data.sources import load_data
from rlpipe.forward import session as session_module
from rlpipe.jobs import paper_record
from rlpipe.jobs.job_config import PaperConfig, PaperJob
from rlpipe.jobs.paper_job import run_paper
from rlpipe.jobs.spec import RunContext
from rlpipe.jobs.train_job import run_train

ROOT = Path(__file__).resolve().parents[1]
YEAR = 8760


def _year_of_bars(bars: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """`YEAR` hourly bars from `start`: the given bars' relative moves, repeated."""
    reps = -(-YEAR // len(bars))
    rel = bars / bars["close"].iloc[0]
    parts, level = [], 1.0
    for _ in range(reps):
        part = rel * level
        level = float(part["close"].iloc[-1])
        parts.append(part)
    out = pd.concat(parts).iloc[:YEAR].copy()
    out["volume"] = np.tile(bars["volume"].to_numpy(), reps)[:YEAR]
    out.index = pd.date_range(start, periods=YEAR, freq="1h", tz="UTC", name="timestamp")
    return out


def _timed(counter: dict[str, float]) -> None:
    """Add up the seconds spent in `Session.on_bar` and `PaperRecord.flush`."""
    for owner, name in ((session_module.Session, "on_bar"), (paper_record.PaperRecord, "flush")):
        real = getattr(owner, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            t0 = time.perf_counter()
            try:
                return _real(*args, **kwargs)
            finally:
                counter[_name] = counter.get(_name, 0.0) + time.perf_counter() - t0

        setattr(owner, name, wrapped)


def main() -> None:
    register_configs()
    tmp = Path(tempfile.mkdtemp())
    uri = f"sqlite:///{tmp}/mlflow.db"
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=smoke", "device=cpu", f"tracking.uri={uri}",
                                          f"checkpoint.dir={tmp}/ck"])  # fmt: skip
    job = train_job(cfg)
    model = f"models:/rlpipe-policy/{run_train(job, RunContext(root=ROOT)).model_version}"
    bars = load_data(job.data).loc["2022-06-20":, ["open", "high", "low", "close", "volume"]]
    year = _year_of_bars(bars, bars.index[-1] + pd.Timedelta(hours=1))
    year.to_csv(tmp / "year.csv")
    bars.iloc[:600].to_csv(tmp / "warm.csv", index_label="timestamp")
    tracking = job.tracking

    def session(path: str, folder: str, **kw: object) -> tuple[float, object]:
        paper = PaperConfig(dir=str(tmp / folder), **kw)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        data = DataSpec(source="csv", path=path)
        result = run_paper(PaperJob(model, data, tracking, paper=paper, root=tmp))
        return time.perf_counter() - t0, result

    session(str(tmp / "warm.csv"), "warm")  # first-call imports (MLflow's store, plotting)
    counter: dict[str, float] = {}
    _timed(counter)
    wall, _ = session(str(tmp / "year.csv"), "year")
    year_split = {"wall_s": wall, "session_s": counter["on_bar"], "flush_s": counter["flush"]}
    counter.clear()
    n = 500
    bars.iloc[: n + 49].to_csv(tmp / "follow.csv", index_label="timestamp")
    follow_wall, _ = session(str(tmp / "follow.csv"), "follow", save_every=1)
    per_bar = (counter["on_bar"] + counter["flush"]) / (n + 49)
    results = {"year": year_split, "per_bar_every_bar_saved_s": per_bar, "follow_session_wall_s": follow_wall}
    print(
        f"a year of hourly bars ({YEAR}): {wall:.1f} s wall = session {year_split['session_s']:.1f} s"
        f" + points/decisions/state {year_split['flush_s']:.1f} s + the rest "
        f"{wall - year_split['session_s'] - year_split['flush_s']:.1f} s (file, tear sheet, health)"
    )
    print(f"one new bar, saved at once (follow mode's cadence): {1000 * per_bar:.1f} ms of compute")
    out = ROOT / "bench_results"
    out.mkdir(exist_ok=True)
    (out / "paper.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
