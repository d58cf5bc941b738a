"""Metrics against hand-computed cases, plus invariants with hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evimae_stream.metrics import (
    ScoredSegment,
    accuracy,
    average_precision,
    clip_map,
    macro_f1,
    segment_ap,
    segment_map,
    tiou,
    windows_to_segments,
)


def test_accuracy_and_macro_f1_by_hand():
    truth = ["a", "b", "a", "c"]
    pred = ["a", "a", "a", "c"]
    assert accuracy(truth, pred) == pytest.approx(0.75)
    # a: tp 2 fp 1 fn 0 -> 4/5; b: tp 0 -> 0; c: tp 1 -> 1
    assert macro_f1(truth, pred) == pytest.approx((0.8 + 0.0 + 1.0) / 3)


def test_macro_f1_counts_classes_only_predicted():
    # d is never true but predicted once: it occurs, with F1 0
    assert macro_f1(["a", "a"], ["a", "d"]) == pytest.approx((2 / 3 + 0.0) / 2)


def test_empty_and_mismatched_inputs():
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError):
        accuracy(["a"], [])


def test_average_precision_by_hand():
    # ranks: pos (P 1, R .5), neg, pos (P 2/3, R 1), neg
    assert average_precision([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(
        0.5 * 1 + 0.5 * 2 / 3
    )
    # tied scores form one threshold: P = 1/2 at R = 1
    assert average_precision([0.5, 0.5], [1, 0]) == pytest.approx(0.5)
    assert math.isnan(average_precision([0.1, 0.2], [0, 0]))


def test_clip_map_averages_present_classes():
    classes = ["a", "b", "c"]
    truth = ["a", "b", "a"]
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.3, 0.8, 0.1]])
    mean, per = clip_map(truth, scores, classes)
    # a: order w0 (pos), w2 (pos), w1 -> AP 1; b: order w2 (neg), w1 (pos) -> P 1/2 at R 1
    assert per == pytest.approx({"a": 1.0, "b": 0.5})
    assert "c" not in per
    assert mean == pytest.approx(0.75)


def test_windows_merge_into_scored_segments():
    segs = windows_to_segments(
        [1.0, 1.5, 2.0, 2.5, 4.0], ["a", "a", "b", None, "b"], [0.8, 0.6, 0.9, 0.1, 0.5], 0.5
    )
    assert segs == [
        ScoredSegment(0.5, 1.5, "a", pytest.approx(0.7)),
        ScoredSegment(1.5, 2.0, "b", 0.9),
        ScoredSegment(3.5, 4.0, "b", 0.5),
    ]


def test_tiou_by_hand():
    assert tiou(ScoredSegment(0, 10, "a"), ScoredSegment(5, 15, "a")) == pytest.approx(5 / 15)
    assert tiou(ScoredSegment(0, 1, "a"), ScoredSegment(2, 3, "a")) == 0.0


def test_segment_ap_duplicate_detection_is_a_false_positive():
    gt = [ScoredSegment(0, 10, "a")]
    preds = [ScoredSegment(5, 15, "a", 0.9), ScoredSegment(0, 10, "a", 0.5)]
    # tIoU 0.3: the first matches (1/3 >= .3); the second finds its gt taken -> FP.
    # precision [1, .5], recall [1, 1] -> AP 1
    assert segment_ap(preds, gt, 0.3) == pytest.approx(1.0)
    # tIoU 0.5: the first is a FP, the second a TP: precision [0, .5] recall [0, 1] -> AP .5
    assert segment_ap(preds, gt, 0.5) == pytest.approx(0.5)


def test_segment_ap_half_recall_and_empty_cases():
    gt = [ScoredSegment(0, 10, "a"), ScoredSegment(20, 30, "a")]
    assert segment_ap([ScoredSegment(0, 10, "a", 0.7)], gt, 0.5) == pytest.approx(0.5)
    assert segment_ap([], gt, 0.5) == 0.0
    assert math.isnan(segment_ap([ScoredSegment(0, 1, "a")], [], 0.5))


def test_segment_map_averages_classes_then_thresholds():
    gt = [ScoredSegment(0, 10, "a"), ScoredSegment(10, 20, "b"), ScoredSegment(20, 25, "null")]
    # a: perfect; b: predicted [10, 16]: tIoU .6 -> TP at .3 .. .6, FP at .7
    preds = [ScoredSegment(0, 10, "a", 0.9), ScoredSegment(10, 16, "b", 0.8)]
    out = segment_map(preds, gt, ignore=("null",))
    assert out["per_threshold"] == pytest.approx({0.3: 1.0, 0.4: 1.0, 0.5: 1.0, 0.6: 1.0, 0.7: 0.5})
    assert out["mean"] == pytest.approx(4.5 / 5)
    assert out["per_class"] == pytest.approx({"a": 1.0, "b": 0.8})


segments = st.lists(
    st.tuples(
        st.floats(0, 100, allow_nan=False),
        st.floats(0.1, 20, allow_nan=False),
        st.sampled_from(["a", "b", "c"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(segments)
def test_truth_as_prediction_scores_one(items):
    truth = [ScoredSegment(s, s + d, lab) for s, d, lab in items]
    out = segment_map(truth, truth)
    # every truth matches itself (equal copies match each other); AP is 1 for every class
    assert out["mean"] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1, allow_nan=False), st.booleans()), min_size=1, max_size=30)
)
def test_average_precision_bounds_and_perfect_ranking(pairs):
    scores = [s for s, _ in pairs]
    pos = [p for _, p in pairs]
    ap = average_precision(scores, pos)
    if not any(pos):
        assert math.isnan(ap)
        return
    assert 0.0 < ap <= 1.0 + 1e-12
    perfect = [1.0 if p else 0.0 for p in pos]
    assert average_precision(perfect, pos) == pytest.approx(1.0)
