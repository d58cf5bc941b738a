"""Time-interval geometry of the interval model (TIM): multi-scale dense queries, their labels
against ground truth, the 1-D distance-IoU loss, decoding and non-maximum suppression.

Everything here is in context units: a context of ``context_s`` seconds is ``[0, 1]``.

- :func:`dense_queries`: TIM's pyramid — query length ``q`` from ``min_size``, doubling while
  below 1, each scale's queries starting every ``q/2`` (half overlapping), clipped to the context.
- :func:`label_queries`: each query is assigned the ground-truth segment it overlaps most (tIoU);
  below ``iou_threshold`` it is background (label −1).
- :func:`diou_loss`: TIM's centre-offset distance-IoU loss (Zheng et al.).
- :func:`nms`: greedy per-class NMS on tIoU (the highest score wins, overlapping ones of the
  same class above the threshold are dropped).
- :func:`refine`: a detection's boundaries snapped to where its class's per-window evidence
  crosses a threshold (the model's window head), for boundaries finer than the query pyramid.
"""

from __future__ import annotations

import numpy as np
import torch


def dense_queries(min_size: float) -> np.ndarray:
    """``(Q, 2)`` multi-scale queries over ``[0, 1]`` (see the module doc)."""
    if not 0 < min_size < 1:
        raise ValueError(f"query min_size must be in (0, 1), got {min_size}")
    out = []
    size = float(min_size)
    while size < 1.0 + 1e-9:
        starts = np.arange(0.0, 1.0 - size / 2 + 1e-9, size / 2)
        q = np.stack([starts, np.minimum(starts + size, 1.0)], axis=1)
        out.append(q)
        size *= 2
    return np.round(np.concatenate(out), 6).astype(np.float32)


def tiou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Temporal IoU of every interval of ``a (P, 2)`` with every one of ``b (G, 2)``: ``(P, G)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 2)
    inter = np.clip(
        np.minimum(a[:, None, 1], b[None, :, 1]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None
    )
    union = (a[:, None, 1] - a[:, None, 0]) + (b[None, :, 1] - b[None, :, 0]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def label_queries(
    queries: np.ndarray, gt: np.ndarray, gt_labels: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels ``(Q,)`` with −1 for background, target intervals ``(Q, 2)``, tIoU ``(Q,)``)
    of each query's best-overlapping ground-truth segment."""
    q = len(queries)
    if len(gt) == 0:
        return np.full(q, -1, np.int64), np.zeros((q, 2), np.float32), np.zeros(q, np.float32)
    ious = tiou_matrix(queries, gt)  # (Q, G)
    best = ious.argmax(axis=1)
    iou = ious[np.arange(q), best]
    labels = np.where(iou >= iou_threshold, np.asarray(gt_labels)[best], -1).astype(np.int64)
    return labels, np.asarray(gt, np.float32)[best], iou.astype(np.float32)


def decode(queries: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Refined intervals ``(..., 2)``: the query's centre minus/plus the two offsets."""
    centre = queries.mean(dim=-1, keepdim=True)
    return torch.cat((centre - offsets[..., :1], centre + offsets[..., 1:]), dim=-1)


def target_offsets(queries: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Offsets ``(..., 2)`` from each query's centre to its target's start and end (what
    :func:`decode` inverts); may be negative when the target does not contain the centre."""
    centre = queries.mean(dim=-1, keepdim=True)
    return torch.cat((centre - targets[..., :1], targets[..., 1:] - centre), dim=-1)


def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Distance-IoU loss per row of centre offsets ``(N, 2)`` (left, right): ``1 − IoU +
    (centre distance / enclosing length)²``. Targets may be negative (centre outside the
    target); the IoU is then computed on the decoded intervals."""
    ps, pe = -pred[:, 0], pred[:, 1]
    ts, te = -target[:, 0], target[:, 1]
    inter = (torch.minimum(pe, te) - torch.maximum(ps, ts)).clamp(min=0)
    union = (pe - ps) + (te - ts) - inter
    iou = inter / union.clamp(min=eps)
    enclose = (torch.maximum(pe, te) - torch.minimum(ps, ts)).clamp(min=eps)
    rho = 0.5 * ((ps + pe) - (ts + te))
    return 1.0 - iou + (rho / enclose) ** 2


def nms(
    segments: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float,
    max_out: int | None = None,
) -> np.ndarray:  # fmt: skip
    """Indices kept by greedy per-class NMS, highest score first (see the module doc)."""
    segments = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if not (len(segments) == len(scores) == len(labels)):
        raise ValueError("nms: segments, scores and labels differ in length")
    order = np.argsort(-scores, kind="mergesort")
    segments, labels = segments[order], labels[order]
    alive = np.ones(len(order), dtype=bool)
    keep: list[int] = []
    for rank in range(len(order)):
        if not alive[rank]:
            continue
        keep.append(int(order[rank]))
        if max_out is not None and len(keep) >= max_out:
            break
        rest = np.nonzero(alive[rank + 1 :] & (labels[rank + 1 :] == labels[rank]))[0] + rank + 1
        if len(rest):
            ious = tiou_matrix(segments[rank : rank + 1], segments[rest])[0]
            alive[rest[ious > iou_threshold]] = False
    return np.asarray(keep, dtype=np.int64)


def crossings(evidence: np.ndarray, centres: np.ndarray, threshold: float
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(rises, falls): the times where ``evidence (N,)``, sampled at ``centres (N,)``, goes
    above / below ``threshold``, linearly interpolated between the two samples either side."""
    e = np.asarray(evidence, dtype=np.float64)
    c = np.asarray(centres, dtype=np.float64)
    above = e >= threshold
    i = np.nonzero(above[1:] != above[:-1])[0]  # the change lies between i and i + 1
    de = e[i + 1] - e[i]
    frac = np.clip((threshold - e[i]) / np.where(de != 0, de, 1.0), 0.0, 1.0)
    t = c[i] + frac * (c[i + 1] - c[i])
    rising = above[i + 1]
    return t[rising], t[~rising]


def refine(segment: tuple[float, float], evidence: np.ndarray, centres: np.ndarray,
           threshold: float = 0.5) -> tuple[float, float]:  # fmt: skip
    """``segment``'s (start, end) moved to the nearest rise / fall of its class's per-window
    ``evidence`` (probabilities at the window ``centres``) within half its length; an end
    with no such crossing stays where it is, and so does a segment the snap would empty."""
    s, e = float(segment[0]), float(segment[1])
    reach = 0.5 * (e - s)
    rises, falls = crossings(evidence, centres, threshold)
    rises, falls = rises[np.abs(rises - s) <= reach], falls[np.abs(falls - e) <= reach]
    s2 = float(rises[np.abs(rises - s).argmin()]) if len(rises) else s
    e2 = float(falls[np.abs(falls - e).argmin()]) if len(falls) else e
    return (s2, e2) if e2 > s2 else (s, e)
