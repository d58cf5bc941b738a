"""Evaluation metrics of window-level and segment-level action recognition.

Everything here is plain numpy on already-decided predictions, so it is exact and testable
against hand-computed cases:

- :func:`accuracy`, :func:`macro_f1` — per-window classification (F1 averaged over every class
  that occurs in the truth or the predictions, as scikit-learn's ``average="macro"``).
- :func:`average_precision` — one-vs-rest AP of scores against binary truth, the non-interpolated
  step sum ``Σ (R_n − R_{n−1}) · P_n`` over distinct score thresholds (scikit-learn's
  ``average_precision_score``); :func:`clip_map` averages it over the classes present in the truth.
- :func:`windows_to_segments` — consecutive windows with the same predicted label merge into one
  segment scored by the mean of their scores (how WEAR-style temporal action detection is scored
  from a per-window recogniser).
- :func:`segment_ap` / :func:`segment_map` — ActivityNet detection AP: predictions sorted by score,
  each matched greedily to the unmatched ground-truth segment of its class with the highest
  temporal IoU (a true positive when that IoU ≥ the threshold), precision made monotone and
  integrated over recall; the mAP averages classes present in the ground truth, then the tIoU
  thresholds 0.3:0.1:0.7 (WEAR's protocol).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: WEAR's temporal-IoU thresholds 0.3, 0.4, …, 0.7.
TIOU_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class ScoredSegment:
    """A time span ``[start_s, end_s)`` with a label and a confidence (1.0 for ground truth)."""

    start_s: float
    end_s: float
    label: str
    score: float = 1.0

    def __post_init__(self) -> None:
        if not self.end_s >= self.start_s:
            raise ValueError(f"segment {self.label!r}: end {self.end_s} < start {self.start_s}")


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Fraction of windows whose predicted label equals the true one (nan when empty)."""
    _same_length(y_true, y_pred)
    if not len(y_true):
        return float("nan")
    return float(np.mean([t == p for t, p in zip(y_true, y_pred, strict=True)]))


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 over every class in the truth or the predictions.

    A class with no true and no predicted windows does not occur; a class that occurs with
    ``tp = 0`` has F1 0. nan when there are no windows.
    """
    _same_length(y_true, y_pred)
    if not len(y_true):
        return float("nan")
    f1s = []
    for c in sorted(set(y_true) | set(y_pred)):
        tp = sum(t == c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fp = sum(t != c and p == c for t, p in zip(y_true, y_pred, strict=True))
        fn = sum(t == c and p != c for t, p in zip(y_true, y_pred, strict=True))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def average_precision(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """One-vs-rest average precision: ``Σ (R_n − R_{n−1}) · P_n`` over distinct thresholds,
    highest score first (ties share one threshold). nan when there is no positive."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positives, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores {s.shape} and positives {y.shape} must be equal 1-D shapes")
    n_pos = int(y.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # the last index of every run of equal scores is one threshold
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / n_pos
    prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - prev) * precision))


def clip_map(
    y_true: Sequence[str], scores: np.ndarray, classes: Sequence[str]
) -> tuple[float, dict[str, float]]:
    """Mean over the classes present in ``y_true`` of the AP of ``scores[:, k]`` for class k.

    ``scores``: (N windows, K classes), columns in ``classes`` order. Returns the mean and the
    per-class APs (present classes only).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape != (len(y_true), len(classes)):
        raise ValueError(
            f"scores shape {scores.shape} must be (windows {len(y_true)}, classes {len(classes)})"
        )
    per = {}
    for k, c in enumerate(classes):
        pos = [t == c for t in y_true]
        if any(pos):
            per[c] = average_precision(scores[:, k], pos)
    return (float(np.mean(list(per.values()))) if per else float("nan")), per


def windows_to_segments(
    t_end_s: Sequence[float], labels: Sequence[str | None], scores: Sequence[float], stride_s: float
) -> list[ScoredSegment]:
    """Merge consecutive windows with equal labels into segments scored by their mean score.

    Window ``i`` stands for ``[t_end_s[i] − stride_s, t_end_s[i])`` (the stretch of time it is the
    newest prediction for). A window labelled None (no prediction) breaks a segment and is not
    part of any; so does a gap of more than 1.5 strides between windows.
    """
    if not stride_s > 0:
        raise ValueError(f"stride_s must be > 0, got {stride_s}")
    _same_length(t_end_s, labels)
    _same_length(t_end_s, scores)
    out: list[ScoredSegment] = []
    run: list[int] = []

    def close() -> None:
        if run:
            i0, i1 = run[0], run[-1]
            out.append(
                ScoredSegment(
                    float(t_end_s[i0]) - stride_s,
                    float(t_end_s[i1]),
                    str(labels[i0]),
                    float(np.mean([scores[i] for i in run])),
                )
            )
            run.clear()

    for i, label in enumerate(labels):
        if label is None:
            close()
            continue
        if run and (
            labels[run[-1]] != label or float(t_end_s[i]) - float(t_end_s[run[-1]]) > 1.5 * stride_s
        ):
            close()
        run.append(i)
    close()
    return out


def tiou(a: ScoredSegment, b: ScoredSegment) -> float:
    """Temporal intersection over union of two segments (0 when both are empty)."""
    inter = max(0.0, min(a.end_s, b.end_s) - max(a.start_s, b.start_s))
    union = max(a.end_s, b.end_s) - min(a.start_s, b.start_s)
    return inter / union if union > 0 else 0.0


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """ActivityNet's ``interpolated_prec_rec``: monotone precision envelope integrated over
    recall."""
    mprec = np.r_[0.0, precision, 0.0]
    mrec = np.r_[0.0, recall, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def segment_ap(
    predictions: Sequence[ScoredSegment], truth: Sequence[ScoredSegment], threshold: float
) -> float:
    """Detection AP of one class at one tIoU threshold (every segment given is of that class).

    nan when there is no ground truth; 0 when there are ground truths but no predictions.
    """
    if not truth:
        return float("nan")
    if not predictions:
        return 0.0
    order = sorted(range(len(predictions)), key=lambda i: -predictions[i].score)
    matched = [False] * len(truth)
    tp = np.zeros(len(order))
    for rank, i in enumerate(order):
        ious = [tiou(predictions[i], g) for g in truth]
        # the best still-unmatched ground truth above the threshold (ActivityNet)
        for j in np.argsort(ious, kind="mergesort")[::-1]:
            if ious[j] < threshold:
                break
            if matched[j]:
                continue
            matched[j] = True
            tp[rank] = 1.0
            break
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, len(order) + 1)
    recall = ctp / len(truth)
    return _interpolated_ap(precision, recall)


def segment_map(
    predictions: Sequence[ScoredSegment],
    truth: Sequence[ScoredSegment],
    thresholds: Sequence[float] = TIOU_THRESHOLDS,
    ignore: Sequence[str] = (),
) -> dict[str, object]:
    """Segment mAP per tIoU threshold and averaged over thresholds.

    Classes are those present in ``truth`` (minus ``ignore``, e.g. WEAR's "null"); predictions of
    other classes count nowhere. Returns ``{"per_threshold": {thr: mAP}, "mean": mAP,
    "per_class": {class: AP averaged over thresholds}}``.
    """
    classes = sorted({g.label for g in truth} - set(ignore))
    per_thr: dict[float, float] = {}
    per_class: dict[str, list[float]] = {c: [] for c in classes}
    for thr in thresholds:
        aps = []
        for c in classes:
            ap = segment_ap(
                [p for p in predictions if p.label == c], [g for g in truth if g.label == c], thr
            )
            aps.append(ap)
            per_class[c].append(ap)
        per_thr[float(thr)] = float(np.mean(aps)) if aps else float("nan")
    mean = float(np.mean(list(per_thr.values()))) if per_thr else float("nan")
    return {
        "per_threshold": per_thr,
        "mean": mean,
        "per_class": {c: float(np.mean(v)) for c, v in per_class.items()},
    }


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"sequences differ in length: {len(a)} vs {len(b)}")
