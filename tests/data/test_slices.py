"""Slice declarations, the leakage guard, resolution to bars, walk-forward folds, regime labels, the spec."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from rlpipe.data.data_config import Segment, SliceSpec, WindowSpec
from rlpipe.data.slices import (
    Slice,
    build_slices,
    check_no_leakage,
    coverage_window,
    declared_slices,
    label_regime,
    parse_slices,
    regimes_offered,
    resolve,
    role_mask,
    walk_forward,
)
from rlpipe.errors import SliceError
from tests.support.markets import regime_schedule
from tests.support.project import CONF

H = pd.Timedelta("1h")


def item(
    name: str, role: str = "train", start: str = "2021-01-01", end: str = "2021-01-10", **kw: str
) -> dict:
    return {
        "name": name,
        "role": role,
        "regime": kw.pop("regime", "bull"),
        "start": start,
        "end": end,
        **kw,
    }


def hourly(n: int, start: str = "2021-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="1h", tz="UTC")


# ------------------------------------------------------------------------------ parse_slices
def test_parse_slices_builds_utc_slices() -> None:
    slices = parse_slices(
        [
            item("train_1", start="2021-01-01", end="2021-02-01"),
            {
                "name": "test_1",
                "role": "test",
                "start": "2021-03-01T00:00+02:00",
                "end": "2021-03-10",
            },
        ]
    )
    assert [s.name for s in slices] == ["train_1", "test_1"]
    assert slices[0] == Slice(
        "train_1",
        "train",
        "bull",
        pd.Timestamp("2021-01-01", tz="UTC"),
        pd.Timestamp("2021-02-01", tz="UTC"),
    )
    assert slices[1].regime == "unlabelled"
    assert slices[1].start == pd.Timestamp("2021-02-28 22:00", tz="UTC")
    assert str(slices[1].end.tz) == "UTC"


def test_bad_role_names_the_slice_and_the_roles() -> None:
    with pytest.raises(SliceError) as err:
        parse_slices([item("ok"), item("bear_2022", role="testing")])
    msg = str(err.value)
    assert "slices.windows[1]" in msg and "bear_2022" in msg and "'testing'" in msg
    assert "validation" in msg
    assert (
        msg
        == "slices.windows[1] (bear_2022): role='testing'; expected one of ('train', 'validation', 'test')"
    )


def test_bad_regime_names_the_slice() -> None:
    with pytest.raises(SliceError) as err:
        parse_slices([item("crash", regime="crash")], key="slices.custom")
    msg = str(err.value)
    assert "slices.custom[0]" in msg and "(crash)" in msg and "regime='crash'" in msg
    assert msg == "slices.custom[0] (crash): regime='crash'; expected one of ('bull', 'bear', 'sideways')"


@pytest.mark.parametrize("end", ["2021-01-05", "2021-01-01"])
def test_end_not_after_start_names_the_slice(end: str) -> None:
    with pytest.raises(SliceError) as err:
        parse_slices([item("train_1"), item("backwards", start="2021-01-05", end=end)])
    msg = str(err.value)
    assert "slices.windows[1]" in msg and "backwards" in msg and "is not after start" in msg
    start, stop = pd.Timestamp("2021-01-05", tz="UTC"), pd.Timestamp(end, tz="UTC")
    assert msg == f"slices.windows[1] (backwards): end {stop} is not after start {start}"


def test_duplicate_names_are_named() -> None:
    with pytest.raises(SliceError) as err:
        parse_slices([item("a"), item("b"), item("a", role="test")])
    assert "duplicate slice name(s) ['a']" in str(err.value)


@pytest.mark.parametrize("field", ["role", "start", "end"])
def test_missing_field_names_the_slice_and_the_field(field: str) -> None:
    broken = item("bull_2021")
    del broken[field]
    with pytest.raises(SliceError) as err:
        parse_slices([item("first"), broken])
    msg = str(err.value)
    assert "slices.windows[1]" in msg and f"['{field}']" in msg
    assert "bull_2021" in msg  # the slice's name is known, so the error names it
    assert msg == f"slices.windows[1] (bull_2021): missing field(s) ['{field}']"


def test_missing_name_is_reported_by_position() -> None:
    broken = item("x")
    del broken["name"]
    with pytest.raises(SliceError, match=r"slices.windows\[0\]: missing field\(s\) \['name'\]"):
        parse_slices([broken])


def test_unparseable_timestamp_names_the_position() -> None:
    with pytest.raises(SliceError, match=r"slices.windows\[0\].*cannot parse timestamp 'soon'"):
        parse_slices([item("t", start="soon")])


# ------------------------------------------------------------------------------ leakage guard
def _train_test(test_start: str, test_end: str) -> list[Slice]:
    return parse_slices(
        [
            item("train_1", start="2021-01-01 00:00", end="2021-01-10 23:00"),
            item("test_1", role="test", start=test_start, end=test_end),
        ]
    )


def test_test_slice_overlapping_training_is_refused() -> None:
    with pytest.raises(SliceError) as err:
        check_no_leakage(_train_test("2021-01-08", "2021-01-20"), pd.Timedelta(0))
    msg = str(err.value)
    assert "test slice 'test_1'" in msg and "training slice 'train_1'" in msg and "slices.embargo" in msg
    assert msg == (
        "test slice 'test_1' [2021-01-08 00:00:00+00:00 .. 2021-01-20 00:00:00+00:00] overlaps training "
        "slice 'train_1' [2021-01-01 00:00:00+00:00 .. 2021-01-10 23:00:00+00:00], within the embargo of "
        "0 days 00:00:00 (slices.embargo); move or shorten one of the two windows so that more than "
        "0 days 00:00:00 separates them, or lower slices.embargo"
    )


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2021-01-11 00:00", "2021-01-20"),  # 1h after training ends, embargo 24h
        ("2021-01-11 23:00", "2021-01-20"),  # exactly at the embargo boundary
        ("2020-12-01", "2020-12-31 00:00"),  # before training, 24h before its start
        ("2020-12-01", "2021-02-01"),  # surrounds the training window
    ],
)
def test_test_slice_within_the_embargo_of_training_is_refused(start: str, end: str) -> None:
    with pytest.raises(SliceError, match="within the embargo of 1 days"):
        check_no_leakage(_train_test(start, end), pd.Timedelta("24h"))


@pytest.mark.parametrize(
    ("start", "end"),
    [("2021-01-12 00:00", "2021-01-20"), ("2020-12-01", "2020-12-30 23:00")],
)
def test_test_slice_beyond_the_embargo_is_accepted(start: str, end: str) -> None:
    assert check_no_leakage(_train_test(start, end), pd.Timedelta("24h")) is None  # 25h away: no error
    with pytest.raises(SliceError):
        check_no_leakage(_train_test(start, end), pd.Timedelta("25h"))


def _train_validation_test(val_start: str, val_end: str) -> list[Slice]:
    return parse_slices(
        [
            item("train_1", start="2021-01-01 00:00", end="2021-01-10 23:00"),
            item("val_1", role="validation", start=val_start, end=val_end),
            item("test_1", role="test", start="2021-02-01", end="2021-02-10"),
        ]
    )


def test_validation_slice_overlapping_training_is_refused() -> None:
    with pytest.raises(SliceError) as err:
        check_no_leakage(_train_validation_test("2021-01-10 12:00", "2021-01-20"), pd.Timedelta("7D"))
    assert str(err.value) == (
        "validation slice 'val_1' [2021-01-10 12:00:00+00:00 .. 2021-01-20 00:00:00+00:00] overlaps "
        "training slice 'train_1' [2021-01-01 00:00:00+00:00 .. 2021-01-10 23:00:00+00:00], within the "
        "embargo of 7 days 00:00:00 (slices.embargo); move or shorten one of the two windows so that "
        "more than 7 days 00:00:00 separates them, or lower slices.embargo"
    )


def test_validation_slice_starting_within_the_embargo_after_training_is_refused() -> None:
    # the bar right after training: what conf/slices/regimes.yaml declared before (val_bull_1)
    with pytest.raises(SliceError) as err:
        check_no_leakage(_train_validation_test("2021-01-11 00:00", "2021-01-20"), pd.Timedelta("7D"))
    assert str(err.value) == (
        "validation slice 'val_1' [2021-01-11 00:00:00+00:00 .. 2021-01-20 00:00:00+00:00] starts "
        "0 days 01:00:00 after training slice 'train_1' [2021-01-01 00:00:00+00:00 .. "
        "2021-01-10 23:00:00+00:00] ends, within the embargo of 7 days 00:00:00 (slices.embargo); move "
        "or shorten one of the two windows so that more than 7 days 00:00:00 separates them, or lower "
        "slices.embargo"
    )
    with pytest.raises(SliceError, match=r"validation slice 'val_1' .* starts 7 days 00:00:00 after"):
        check_no_leakage(_train_validation_test("2021-01-17 23:00", "2021-01-20"), pd.Timedelta("7D"))


def test_validation_slice_beyond_the_embargo_is_accepted_and_may_touch_test() -> None:
    # 7 days and 1 hour after the last training bar; the test window may follow validation at once
    slices = _train_validation_test("2021-01-18 00:00", "2021-01-31 23:00")
    assert check_no_leakage(slices, pd.Timedelta("7D")) is None
    with pytest.raises(SliceError, match="validation slice 'val_1'"):
        check_no_leakage(slices, pd.Timedelta("7D1h"))


def test_test_slice_touching_training_is_refused_naming_the_gap() -> None:
    touching = parse_slices(
        [
            item("train_1", start="2021-01-01", end="2021-01-10"),
            item("test_1", role="test", start="2021-01-10 01:00", end="2021-01-15"),
        ]
    )
    with pytest.raises(SliceError, match=r"test slice 'test_1' .* starts 0 days 01:00:00 after training"):
        check_no_leakage(touching, pd.Timedelta("48h"))
    before = parse_slices(
        [
            item("train_1", start="2021-01-10", end="2021-01-20"),
            item("test_1", role="test", start="2021-01-01", end="2021-01-09"),
        ]
    )
    with pytest.raises(SliceError, match=r"test slice 'test_1' .* ends 1 days 00:00:00 before training"):
        check_no_leakage(before, pd.Timedelta("48h"))


def test_leakage_check_requires_train_and_test_roles() -> None:
    only_train = parse_slices([item("train_1")])
    with pytest.raises(SliceError, match="role 'test'"):
        check_no_leakage(only_train, H)
    only_test = parse_slices([item("test_1", role="test")])
    with pytest.raises(SliceError, match="role 'train'"):
        check_no_leakage(only_test, H)


# ------------------------------------------------------------------------------ resolve
def test_resolve_maps_inclusive_timestamps_to_bar_ranges() -> None:
    index = hourly(100)
    slices = parse_slices(
        [
            item("a", start="2021-01-01 10:00", end="2021-01-01 19:00"),
            item("b", start="2020-12-31", end="2021-01-01 04:00"),
        ]
    )
    wa, wb = resolve(slices, index)
    assert (wa.lo, wa.hi, wa.bars) == (10, 20, 10)
    assert (wb.lo, wb.hi) == (0, 5)
    mask = role_mask([wa, wb], 100, "train")
    assert mask.sum() == 15 and mask[10] and mask[19] and not mask[20] and not mask[5]
    assert not role_mask([wa, wb], 100, "test").any()


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2022-01-01", "2022-02-01"),
        ("2020-01-01", "2020-06-01"),
        ("2021-01-05 03:00", "2021-01-05 03:30"),
    ],
    ids=["after_data", "before_data", "too_short"],
)
def test_resolve_refuses_a_window_outside_the_data(
    start: str, end: str, request: pytest.FixtureRequest
) -> None:
    index = hourly(100)
    with pytest.raises(SliceError) as err:
        resolve(parse_slices([item("late", start=start, end=end)]), index)
    msg = str(err.value)
    assert "slice 'late'" in msg and "needs at least 2" in msg
    assert str(index[0]) in msg and str(index[-1]) in msg
    s = parse_slices([item("late", start=start, end=end)])[0]
    bars = {"after_data": 0, "before_data": 0, "too_short": 1}[request.node.callspec.id]
    assert msg == (
        f"slice 'late' [{s.start} .. {s.end}] holds {bars} bar(s) of the data "
        f"(which spans {index[0]} .. {index[-1]}); it needs at least 2"
    )


# ------------------------------------------------------------------------------ regime labels
def test_label_regime_reads_trend_against_noise() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.001, 200)
    up = 100 * np.exp(np.cumsum(0.002 + noise))
    down = 100 * np.exp(np.cumsum(-0.002 + noise))
    flat = 100 * np.exp(np.cumsum(noise - noise.mean()))  # ends where it started
    assert label_regime(up) == "bull"
    assert label_regime(down) == "bear"
    assert label_regime(flat) == "sideways"
    assert label_regime(np.full(50, 100.0)) == "sideways"
    assert label_regime(np.array([100.0, 101.0])) == "sideways"  # too short to judge


def test_label_regime_threshold_is_in_units_of_noise() -> None:
    # Log returns alternate 0.022 / -0.018: mean 0.002, std 0.02, n = 100, so the window drifts
    # by exactly one noise unit: t = 0.2 / (0.02 * sqrt(100)) = 1.0.
    r = np.tile([0.022, -0.018], 50)
    close = 100 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    t = np.diff(np.log(close)).sum() / (np.diff(np.log(close)).std() * np.sqrt(100))
    assert 0.9 < t < 1.1
    assert label_regime(close, threshold=0.5) == "bull"
    assert label_regime(close, threshold=1.5) == "sideways"
    assert label_regime(close[::-1], threshold=0.5) == "bear"


# ------------------------------------------------------------------------------ walk forward
def _handmade_close(n_train: int, test_bars: int) -> np.ndarray:
    """Random training history, then an up fold, a down fold and a flat fold."""
    rng = np.random.default_rng(1)
    train = np.cumsum(rng.normal(0, 0.002, n_train))
    noise = rng.normal(0, 0.001, test_bars)
    up = train[-1] + np.cumsum(0.003 + noise)
    down = up[-1] + np.cumsum(-0.003 + noise)
    flat = down[-1] + np.cumsum(noise - noise.mean())
    return 100 * np.exp(np.concatenate([train, up, down, flat]))


@pytest.mark.parametrize(("embargo", "validation"), [(0, 0), (24, 0), (12, 36)])
def test_walk_forward_folds_count_and_embargo(embargo: int, validation: int) -> None:
    test_bars, folds = 48, 3
    close = _handmade_close(300, test_bars)
    index = hourly(len(close))
    slices = walk_forward(
        index,
        close,
        folds=folds,
        test_bars=test_bars,
        embargo_bars=embargo,
        validation_bars=validation,
    )

    roles = [s.role for s in slices]
    assert roles.count("train") == 1 and roles.count("test") == folds
    assert roles.count("validation") == (1 if validation else 0)
    tests = [s for s in slices if s.role == "test"]
    assert [s.name for s in tests] == ["fold1", "fold2", "fold3"]
    windows = {w.slice.name: w for w in resolve(slices, index)}
    # Folds are the last folds * test_bars bars, contiguous, each test_bars long.
    assert [windows[s.name].bars for s in tests] == [test_bars] * folds
    assert windows["fold1"].lo == len(close) - folds * test_bars
    assert windows["fold3"].hi == len(close)
    assert all(windows[a.name].hi == windows[b.name].lo for a, b in pairwise(tests))
    # Training starts at the first bar and ends more than `embargo` bars before any test bar.
    train = windows["train"]
    assert train.lo == 0
    assert windows["fold1"].lo - (train.hi - 1) == embargo + validation + 1
    if validation:
        assert windows["validation"].bars == validation and windows["validation"].hi == windows["fold1"].lo
        (val,) = [s for s in slices if s.role == "validation"]  # labelled by its own trend, like a fold
        lo = windows["validation"].lo
        assert val.regime == label_regime(close[lo : lo + validation], 1.0) != "unlabelled"
    check_no_leakage(slices, embargo * H)
    if validation:  # the embargo sits between training and validation, not only before the folds
        with pytest.raises(SliceError, match=r"validation slice 'validation' .* after training slice"):
            check_no_leakage(slices, (embargo + 1) * H)
    with pytest.raises(SliceError):
        check_no_leakage(slices, (embargo + validation + 1) * H)


def test_walk_forward_labels_folds_from_their_own_prices() -> None:
    close = _handmade_close(300, 60)
    slices = walk_forward(hourly(len(close)), close, folds=3, test_bars=60, embargo_bars=10)
    assert [(s.name, s.regime) for s in slices if s.role == "test"] == [
        ("fold1", "bull"),
        ("fold2", "bear"),
        ("fold3", "sideways"),
    ]
    assert slices[0].regime == "unlabelled"


def test_walk_forward_train_bars_limits_the_training_window() -> None:
    close = _handmade_close(300, 48)
    index = hourly(len(close))
    slices = walk_forward(index, close, folds=3, test_bars=48, embargo_bars=24, train_bars=100)
    train = resolve(slices, index)[0]
    assert train.slice.role == "train" and train.bars == 100
    assert train.hi == len(close) - 3 * 48 - 24


@pytest.mark.parametrize(
    "kwargs",
    [
        {"folds": 10, "test_bars": 48, "embargo_bars": 24},
        {"folds": 0, "test_bars": 48, "embargo_bars": 24},
        {"folds": 3, "test_bars": 48, "embargo_bars": 24, "train_bars": 1000},
    ],
)
def test_walk_forward_that_does_not_fit_is_refused(kwargs: dict) -> None:
    close = _handmade_close(300, 48)
    with pytest.raises(SliceError, match=r"slices\.walk_forward: .* do not fit in the data's 444 bars"):
        walk_forward(hourly(len(close)), close, **kwargs)


def test_walk_forward_step_spaces_folds_and_keeps_the_embargo() -> None:
    index = pd.date_range("2021-01-01", periods=2000, freq="1h", tz="UTC")
    close = np.linspace(100, 120, 2000)
    folds = walk_forward(index, close, folds=4, test_bars=200, embargo_bars=24, step_bars=100, train_bars=500)
    tests = [s for s in folds if s.role == "test"]
    (train,) = [s for s in folds if s.role == "train"]
    starts = [index.get_loc(s.start) for s in tests]
    assert starts == [1500, 1600, 1700, 1800]  # every 100 bars; the last fold ends on the last bar
    assert index.get_loc(tests[-1].end) == 1999
    assert index.get_loc(train.end) == 1500 - 24 - 1  # the embargo separates training and testing
    assert index.get_loc(train.end) - index.get_loc(train.start) + 1 == 500  # sliding: the last 500 bars
    anchored = walk_forward(index, close, folds=4, test_bars=200, embargo_bars=24, step_bars=100)
    assert anchored[0].start == index[0]  # anchored at the first bar


# ------------------------------------------------------------------------------ the spec
def _declared(windows: list[tuple[str, str, str, str, str]], **kw: object) -> SliceSpec:
    return SliceSpec(windows=[WindowSpec(*w) for w in windows], **kw)  # type: ignore[arg-type]


def test_declared_spec_builds_the_windows_it_declares() -> None:
    spec = _declared(
        [
            ("train_1", "train", "bull", "2021-01-01", "2021-01-10"),
            ("test_1", "test", "bear", "2021-01-20", "2021-01-25"),
        ],
        embargo="2D",
    )
    slices = build_slices(spec, hourly(800), np.ones(800))
    assert slices == parse_slices(
        [
            item("train_1", start="2021-01-01", end="2021-01-10"),
            item("test_1", role="test", regime="bear", start="2021-01-20", end="2021-01-25"),
        ]
    )


def test_declared_spec_refuses_leakage_within_its_embargo() -> None:
    windows = [
        ("train_1", "train", "bull", "2021-01-01", "2021-01-10"),
        ("test_1", "test", "bear", "2021-01-12", "2021-01-25"),
    ]
    with pytest.raises(SliceError, match="within the embargo of 3 days"):
        build_slices(_declared(windows, embargo="3D"), hourly(800), np.ones(800))
    assert [s.name for s in build_slices(_declared(windows, embargo="1D"), hourly(800), np.ones(800))] == [
        "train_1",
        "test_1",
    ]


def test_declared_spec_refuses_a_validation_window_within_its_embargo_without_reading_data() -> None:
    spec = _declared(
        [
            ("train_1", "train", "bull", "2021-01-01 00:00", "2021-01-10 23:00"),
            ("val_1", "validation", "bear", "2021-01-12 00:00", "2021-01-15 23:00"),
            ("test_1", "test", "bear", "2021-01-20", "2021-01-25"),
        ],
        embargo="3D",
    )
    with pytest.raises(SliceError, match=r"^validation slice 'val_1' .* starts 1 days 01:00:00 after"):
        declared_slices(spec)
    shorter = SliceSpec(windows=spec.windows, embargo="1D")  # 1 day 1 hour apart: accepted
    assert [s.name for s in declared_slices(shorter)] == ["train_1", "val_1", "test_1"]
    assert declared_slices(SliceSpec(kind="walk_forward")) == []  # generated windows need the data


def test_an_embargo_pandas_cannot_read_is_refused_naming_the_key() -> None:
    spec = _declared([("train_1", "train", "bull", "2021-01-01", "2021-01-10")], embargo="a week")
    with pytest.raises(SliceError) as err:
        declared_slices(spec)
    assert str(err.value) == "slices.embargo='a week' is not a time span; pass e.g. 7D or 36h"


def test_shipped_regime_slices_keep_the_embargo_and_label_each_window_by_its_schedule_segment() -> None:
    regimes = OmegaConf.to_container(OmegaConf.load(CONF / "slices" / "regimes.yaml"))
    data = OmegaConf.load(CONF / "data" / "synthetic.yaml")
    spec = SliceSpec(**{k: v for k, v in regimes.items() if k != "_target_"})  # type: ignore[union-attr]
    slices = declared_slices(spec)  # refuses any validation or test window within 7D of training
    assert spec.embargo == "7D" and [s.role for s in slices].count("validation") == 3
    (last_train,) = [s for s in slices if s.name == "bear_2"]
    first_val = min((s for s in slices if s.role == "validation"), key=lambda s: s.start)
    assert first_val.start - last_train.end == pd.Timedelta("7D1h")
    segments = [Segment(**seg) for seg in data.segments]
    schedule = regime_schedule(segments, data.start, data.freq)
    for s in slices:  # each window lies inside one segment of its own regime
        assert [r for r, first, last in schedule if first <= s.start and s.end <= last] == [s.regime], s.name


def test_spec_without_windows_or_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(SliceError) as err:
        build_slices(SliceSpec(), hourly(10), np.ones(10))
    assert str(err.value) == "slices.windows is empty; declare train and test windows"
    with pytest.raises(SliceError) as err:
        build_slices(SliceSpec(kind="rolling"), hourly(10), np.ones(10))
    assert str(err.value) == "slices.kind='rolling'; expected declared or walk_forward"


def test_walk_forward_spec_turns_its_embargo_into_whole_bars() -> None:
    close = _handmade_close(300, 48)
    index = hourly(len(close))
    spec = SliceSpec(kind="walk_forward", embargo="90min", folds=3, test_bars=48, validation_bars=12)
    direct = walk_forward(index, close, folds=3, test_bars=48, embargo_bars=2, validation_bars=12)
    assert build_slices(spec, index, close) == direct  # 90 minutes of hourly bars: an embargo of 2 bars


def test_coverage_window_is_the_fold_length_or_the_median_declared_test_window() -> None:
    index = hourly(1000)
    assert coverage_window(SliceSpec(kind="walk_forward", test_bars=77), [], index) == 77
    slices = parse_slices(
        [
            item("train_1", start="2021-01-01", end="2021-01-05"),
            item("t1", role="test", start="2021-01-10 00:00", end="2021-01-10 10:00"),  # 10 bars
            item("t2", role="test", start="2021-01-12 00:00", end="2021-01-13 00:00"),  # 24 bars
            item("t3", role="test", start="2021-01-15 00:00", end="2021-01-16 06:00"),  # 30 bars
        ]
    )
    assert coverage_window(SliceSpec(), slices, index) == 24


def test_regimes_offered_are_the_declared_labels_of_every_role() -> None:
    slices = parse_slices(
        [
            item("train_1", regime="bull"),
            item("val_1", role="validation", regime="sideways", start="2021-02-01", end="2021-02-05"),
            item("test_1", role="test", regime="bull", start="2021-03-01", end="2021-03-05"),
        ]
    )
    assert regimes_offered(slices, np.ones(10), window_bars=5) == {"bull", "sideways"}


def test_regimes_offered_by_unlabelled_training_come_from_labelling_the_whole_series() -> None:
    noise = np.random.default_rng(2).normal(0, 0.001, 60)
    steps = np.concatenate([0.003 + noise, -0.003 + noise, noise - noise.mean()])  # up, down, flat
    close = 100 * np.exp(np.cumsum(steps))
    start = pd.Timestamp("2021-01-01", tz="UTC")
    train = Slice("train", "train", "unlabelled", start, start + 10 * H)
    assert regimes_offered([train], close, window_bars=60) == {"bull", "bear", "sideways"}
    assert regimes_offered([train], close[:120], window_bars=60) == {"bull", "bear"}
    assert regimes_offered([train], close, window_bars=1) == set()  # windows of 1 bar say nothing
    labelled = Slice("train", "train", "bull", start, start + 10 * H)
    assert regimes_offered([labelled], close, window_bars=60) == {"bull"}  # labels are trusted


# ------------------------------------------------------------------------------ calendar embargo
def test_walk_forward_embargo_is_calendar_time_on_business_days() -> None:
    index = pd.bdate_range("2015-01-02", periods=600, tz="UTC")  # a Friday: the first step is 3 days
    close = np.linspace(100, 130, 600)
    slices = build_slices(SliceSpec(kind="walk_forward", embargo="7D", folds=3, test_bars=60), index, close)
    train, fold1 = slices[0], slices[1]
    assert index.get_loc(fold1.start) == 600 - 3 * 60
    # Training ends on the last bar that closes (stamp + 1 day) at least 7 days before the first test
    # bar: the next bar would close within the embargo.
    assert fold1.start - (train.end + pd.Timedelta("1D")) >= pd.Timedelta("7D")
    following = index[index.get_loc(train.end) + 1]
    assert fold1.start - (following + pd.Timedelta("1D")) < pd.Timedelta("7D")
    # Turning the embargo into bars with the first step (the old rule) leaks into the first fold.
    bars = int(np.ceil(pd.Timedelta("7D") / (index[1] - index[0])))
    old = walk_forward(index, close, folds=3, test_bars=60, embargo_bars=bars)
    with pytest.raises(SliceError, match=r"test slice 'fold1' .* after training slice 'train' .* of 7 days"):
        check_no_leakage(old, pd.Timedelta("7D"))


def test_walk_forward_calendar_embargo_sits_before_the_validation_window() -> None:
    index = pd.bdate_range("2019-01-01", periods=400, tz="UTC")
    close = np.linspace(100, 90, 400)
    spec = SliceSpec(kind="walk_forward", embargo="10D", folds=2, test_bars=50, validation_bars=30)
    train, validation, *folds = build_slices(spec, index, close)
    assert validation.role == "validation" and index.get_loc(validation.start) == 400 - 100 - 30
    assert validation.start - (train.end + pd.Timedelta("1D")) >= pd.Timedelta("10D")
    assert [index.get_loc(f.start) for f in folds] == [300, 350]


def test_walk_forward_that_does_not_fit_names_the_calendar_embargo() -> None:
    index = pd.bdate_range("2019-01-01", periods=100, tz="UTC")
    with pytest.raises(SliceError) as err:
        build_slices(
            SliceSpec(kind="walk_forward", embargo="40D", folds=3, test_bars=25), index, np.ones(100)
        )
    assert str(err.value) == (
        "slices.walk_forward: 3 folds x 25 test bars + 0 validation + 25 (40 days 00:00:00) embargo "
        "+ all remaining training bars do not fit in the data's 100 bars"
    )
