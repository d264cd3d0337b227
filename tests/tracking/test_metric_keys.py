"""Metric namespaces: one prefix per family; SB3 keys of the earlier layout land in the new one."""

from __future__ import annotations

from rlpipe.tracking import metric_keys as K


def test_families_have_their_own_prefixes_and_never_repeat_one():
    assert K.per_slice("test_bear_1", "total") == "slice/test_bear_1/total"
    assert K.baseline_total("fold1", "buy_and_hold") == "slice/fold1/baseline_buy_and_hold_total"
    assert (K.aggregate("validation", "sharpe_mean"), K.gate("drawdown_under_cap")) == (
        "validation/sharpe_mean",
        "gate/drawdown_under_cap",
    )


def test_learning_curves_sort_before_every_other_family():
    """The MLflow UI groups a run's charts by the part of a key before its last '/' and sorts the
    groups alphabetically: the curves' groups must come before every other family's."""

    def section(key: str) -> str:
        return key.rsplit("/", 1)[0]

    curves = [K.curve(k) for k in ("train/loss", "rollout/ep_rew_mean", "time/fps")]
    curves.append(K.CHECKPOINT_CURVE + "sharpe_mean")
    others = [K.BARS, K.gate("x"), K.per_slice("a", "total"), "test/total", K.TIME + "learn_s", "train/total"]
    others += ["validation/sharpe_mean", "lineage/parent_validation", "pbt/validation/sharpe_mean"]
    assert max(map(section, curves)) < min(map(section, others))


def test_sb3_keys_of_either_layout_become_curve_keys():
    assert K.curve("train/loss") == "curve/train/loss"  # SB3's own key
    assert K.curve("train/train/loss") == "curve/train/loss"  # saved in a state until 2026-12
    assert K.curve("train/rollout/ep_rew_mean") == "curve/rollout/ep_rew_mean"
    assert K.curve("curve/time/fps") == "curve/time/fps"
