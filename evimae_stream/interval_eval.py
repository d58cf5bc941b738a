"""Scoring action segments on one labelled feature sequence: the interval head's detections
against the baseline of the recogniser's windows merged into segments, on the same windows.

- baseline: each window's top class and score (the recogniser's probabilities stored with the
  features) merged by :func:`evimae_stream.metrics.windows_to_segments` — what ``--eval``
  scores for a per-window recogniser;
- interval: :meth:`~evimae_stream.interval_head.IntervalHead.detect`;
- both: segment mAP at tIoU 0.3:0.1:0.7 (:func:`evimae_stream.metrics.segment_map`, classes
  present in the truth, breaks ignored);
- recognition accuracy: every ground-truth segment queried as an interval
  (:meth:`~evimae_stream.interval_head.IntervalHead.recognise`), the fraction labelled right.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evimae_stream.feature_cache import FeatureSequence
from evimae_stream.metrics import ScoredSegment, segment_map, windows_to_segments

#: labels that mean "no activity" (WEAR's null): never a class of segment mAP
IGNORE_LABELS: tuple[str, ...] = ("null",)


def merged_windows(seq: FeatureSequence, classes: Sequence[str], stride_s: float) -> list:
    """The baseline segments: each window's top class merged over consecutive windows."""
    if seq.probs is None or not len(seq):
        return []
    top = seq.probs.argmax(axis=1)
    labels = [classes[int(i)] for i in top]
    scores = seq.probs[np.arange(len(top)), top].tolist()
    return windows_to_segments(seq.t_end_s.tolist(), labels, scores, stride_s)


def map_report(pred: Sequence[ScoredSegment], truth: Sequence[ScoredSegment],
               ignore: Sequence[str] = IGNORE_LABELS) -> dict:  # fmt: skip
    """Segment mAP as the eval JSON writes it: mean, per tIoU, per class."""
    seg = segment_map(list(pred), list(truth), ignore=ignore)
    return {
        "mean": _num(seg["mean"]),
        "per_tiou": {f"{k:.1f}": _num(v) for k, v in seg["per_threshold"].items()},
        "per_class": {k: _num(v) for k, v in seg["per_class"].items()},
    }


def recognition_accuracy(head, seq: FeatureSequence, truth: Sequence[ScoredSegment],
                         ignore: Sequence[str] = IGNORE_LABELS) -> float | None:  # fmt: skip
    """Fraction of ground-truth segments (of the head's classes) the head names right."""
    gts = [g for g in truth if g.label not in ignore and g.label in head.classes]
    if not gts:
        return None
    got = head.recognise(seq, [(g.start_s, g.end_s) for g in gts])
    return _num(float(np.mean([lab == g.label for (lab, _), g in zip(got, gts, strict=True)])))


def segments_report(head, seq: FeatureSequence, truth: Sequence[ScoredSegment],
                    baseline: Sequence[ScoredSegment],
                    ignore: Sequence[str] = IGNORE_LABELS) -> dict:  # fmt: skip
    """The ``segments`` section of an evaluation: the head's detections over ``seq`` and the
    ``baseline`` segments (the same run's windows merged), both scored against ``truth``."""
    detected = head.detect(seq)
    return {
        "interval": {
            "segment_map": map_report(detected, truth, ignore),
            "recognition_accuracy": recognition_accuracy(head, seq, truth, ignore),
            "segments": [_seg(s) for s in detected],
        },
        "merged_windows": {
            "segment_map": map_report(baseline, truth, ignore),
            "segments": [_seg(s) for s in baseline],
        },
        "context_s": head.meta.context_s,
        "stride_s": head.meta.stride_s,
        "windows": len(seq),
    }


def _seg(s: ScoredSegment) -> dict:
    return {
        "start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "label": s.label,
        "score": round(float(s.score), 4),
    }  # fmt: skip


def _num(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 4)
