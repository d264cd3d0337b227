"""Re-evaluate a logged or registered policy on other slices or other data, as a new MLflow run.

The policy is loaded through `mlflow.pyfunc` with the feature statistics and the fill/fee model
it was trained with. On the data it was trained on (same data digest), a test window that
overlaps its training windows plus their embargo is refused before anything runs.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rlpipe.assess import assess, log_assessment
from rlpipe.data.features import normalise, raw_features
from rlpipe.data.slices import Slice, check_no_leakage, resolve
from rlpipe.data.sources import data_digest
from rlpipe.envs.market import make_market
from rlpipe.envs.sim import SimConfig
from rlpipe.errors import SliceError
from rlpipe.tracking import registry, runs
from rlpipe.tracking.policy import load_policy
from rlpipe.tracking.store import ensure_experiment

log = logging.getLogger(__name__)


def reevaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.model` on `cfg.data` / `cfg.slices`; returns the summary of the new run."""
    track = instantiate(cfg.tracking, _convert_="all")
    data_spec = instantiate(cfg.data, _convert_="all")
    slice_spec = instantiate(cfg.slices, _convert_="all")
    gates_cfg = instantiate(cfg.gates, _convert_="all")
    exp_id = ensure_experiment(track.uri, track.experiment)
    name, version, source_run = registry.resolve_model(str(cfg.model))
    policy = load_policy(str(cfg.model))
    meta = policy.meta
    tags = {
        "rlpipe.kind": "evaluation",
        "rlpipe.model_uri": str(cfg.model),
        "rlpipe.model_name": name or "",
        "rlpipe.model_version": version or "",
        "rlpipe.source_run_id": source_run or "",
    }
    with runs.job_run(exp_id, f"evaluate-{name or 'run'}-v{version or source_run}", tags) as run_id:
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(resolved, dict)
        runs.log_params({str(k): v for k, v in resolved.items()})
        df = data_spec.load()
        digest = data_digest(df)
        runs.set_tags({"rlpipe.data_digest": digest})
        slices = [s for s in slice_spec.build(df.index, df["close"].to_numpy(float)) if s.role != "train"]
        if digest == meta.get("data_digest"):
            trained = [
                Slice(f"model_train_{i}", "train", "unlabelled", pd.Timestamp(a), pd.Timestamp(b))
                for i, (a, b) in enumerate(meta.get("train_windows", []))
            ]
            try:
                check_no_leakage([*trained, *slices], pd.Timedelta(meta.get("embargo", slice_spec.embargo)))
            except SliceError as exc:
                raise SliceError(f"{cfg.model} was trained on this data: {exc}") from exc
        windows = resolve(slices, df.index)
        market = make_market(df, normalise(raw_features(df), policy.stats), data_spec.spread_bps)
        sim_cfg = SimConfig(**meta["sim"])
        a = assess(
            market,
            sim_cfg,
            df,
            slices,
            windows,
            slice_spec,
            gates_cfg,
            policy.observation_policy(),
            int(cfg.seed),
        )
        model = {
            "name": name or str(cfg.model),
            "version": version,
            "seed": meta.get("seed"),
            "env": sim_cfg.kind,
            "source_run": source_run,
            "run_id": run_id,
        }
        log_assessment(a, model, step=0)
    if name and version:
        registry.link_evaluation(name, version, run_id)
    test = a.aggregates.get("test", {})
    log.info(
        "%s on %d slice(s): verdict=%s  positive folds %.0f/%.0f  test total %+.2f%%  run=%s",
        cfg.model,
        len(slices),
        a.verdict,
        test.get("positive_slices", 0),
        test.get("slices", 0),
        100 * test.get("total", float("nan")),
        run_id,
    )
    return {"run_id": run_id, "verdict": a.verdict, "test": test, "model_version": version}
