"""Segment mAP (ActivityNet/THUMOS detection AP) against hand-worked examples."""

from __future__ import annotations

import pytest

from evimae_stream.metrics import ScoredSegment as S
from evimae_stream.metrics import segment_ap, segment_map


def test_ap_with_a_false_positive_between_two_hits() -> None:
    truth = [S(0, 10, "a"), S(20, 30, "a")]
    preds = [S(0, 10, "a", 0.9), S(40, 50, "a", 0.8), S(21, 30, "a", 0.7)]
    # ranks: TP (P 1, R .5), FP (P .5, R .5), TP (P 2/3, R 1); envelope: 1 up to R .5, 2/3 to 1
    assert segment_ap(preds, truth, 0.5) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_a_duplicate_of_a_matched_segment_is_a_false_positive() -> None:
    truth = [S(0, 10, "a"), S(20, 30, "a")]
    preds = [S(0, 10, "a", 0.9), S(0, 9, "a", 0.8)]
    assert segment_ap(preds, truth, 0.5) == pytest.approx(0.5)  # R never passes 0.5
    assert segment_ap(preds, truth[:1], 0.5) == pytest.approx(1.0)


def test_the_mean_runs_over_thresholds_and_classes_present_in_the_truth() -> None:
    truth = [S(0, 10, "a"), S(10, 20, "b"), S(20, 30, "null")]
    # a: tIoU 0.6 -> hit at 0.3..0.6, miss at 0.7; b: exact; "c" and "null" are not classes
    preds = [S(0, 6, "a", 0.9), S(10, 20, "b", 0.8), S(0, 30, "c", 0.99), S(20, 30, "null", 1)]
    out = segment_map(preds, truth, ignore=("null",))
    assert out["per_threshold"][0.6] == pytest.approx(1.0)
    assert out["per_threshold"][0.7] == pytest.approx(0.5)
    assert out["per_class"] == pytest.approx({"a": 0.8, "b": 1.0})
    assert out["mean"] == pytest.approx((4 * 1.0 + 0.5) / 5)
