"""``--eval``: score a replay of a labelled session and draw its timeline.

Window truth: the label covering most of the window's IMU span ``[t_ref − window_s, t_ref]``
(None where no label covers it; such windows are not scored). Metrics
(:mod:`evimae_stream.metrics`): per-window accuracy and macro-F1, clip mAP over the smoothed
class probabilities, and WEAR-style segment mAP at tIoU 0.3:0.1:0.7 with consecutive equal
predictions merged into segments. Writes a JSON report and a PNG timeline (truth lane, prediction
lane, one colour per class, legend) drawn with OpenCV.
"""

from __future__ import annotations

import colorsys
import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from evimae_stream.errors import InputError
from evimae_stream.metrics import (
    ScoredSegment,
    accuracy,
    clip_map,
    macro_f1,
    segment_map,
    windows_to_segments,
)
from evimae_stream.types import Segment

#: labels that mean "no activity" in published data; not scored as a class in segment mAP
IGNORE_LABELS: tuple[str, ...] = ("null",)


def window_truth(labels: Sequence[Segment], t_end_s: float, window_s: float) -> str | None:
    """The label with the largest overlap with ``[t_end_s − window_s, t_end_s]`` (ties: later)."""
    lo = t_end_s - window_s
    best, best_overlap = None, 0.0
    for seg in labels:
        overlap = min(seg.end_s, t_end_s) - max(seg.start_s, lo)
        if overlap > 0 and overlap >= best_overlap:
            best, best_overlap = seg.label, overlap
    return best


def evaluate(
    predictions, labels: Sequence[Segment], classes: Sequence[str], stride_s: float
) -> dict:
    """The report dict of one run (predictions carry ``truth``, ``label``, ``probs``)."""
    scored = [p for p in predictions if p.truth is not None and p.label is not None]
    y_true = [p.truth for p in scored]
    y_pred = [p.label for p in scored]
    report: dict = {
        "windows": len(predictions),
        "scored_windows": len(scored),
        "no_prediction": sum(p.label is None for p in predictions),
        "accuracy": _num(accuracy(y_true, y_pred)) if scored else None,
        "macro_f1": _num(macro_f1(y_true, y_pred)) if scored else None,
    }
    if scored:
        probs = np.stack([p.probs for p in scored])
        mean, per = clip_map(y_true, probs, list(classes))
        report["clip_map"] = _num(mean)
        report["clip_ap"] = {k: _num(v) for k, v in per.items()}
    unknown = sorted({t for t in y_true} - set(classes))
    if unknown:
        report["truth_labels_not_in_model"] = unknown
    segs = windows_to_segments(
        [p.t_ref_s if p.t_ref_s is not None else p.t_s for p in predictions],
        [p.label for p in predictions],
        [p.score if p.score is not None else 0.0 for p in predictions],
        stride_s,
    )
    truth = [ScoredSegment(s.start_s, s.end_s, s.label) for s in labels]
    seg = segment_map(segs, truth, ignore=IGNORE_LABELS)
    report["segment_map"] = {
        "mean": _num(seg["mean"]),
        "per_tiou": {f"{k:.1f}": _num(v) for k, v in seg["per_threshold"].items()},
        "per_class": {k: _num(v) for k, v in seg["per_class"].items()},
    }
    return report


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 4)


def table_lines(report: dict) -> list[str]:
    """The printed evaluation table."""

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    seg = report["segment_map"]
    lines = [
        f"{'metric':<26}{'value':>8}",
        f"{'windows scored':<26}{report['scored_windows']:>8}",
        f"{'window accuracy':<26}{f(report['accuracy']):>8}",
        f"{'window macro-F1':<26}{f(report.get('macro_f1')):>8}",
        f"{'clip mAP':<26}{f(report.get('clip_map')):>8}",
    ]
    for thr, v in seg["per_tiou"].items():
        lines.append(f"{'segment mAP @ tIoU ' + thr:<26}{f(v):>8}")
    lines.append(f"{'segment mAP (mean)':<26}{f(seg['mean']):>8}")
    return lines


def class_colours(classes: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """A distinct BGR colour per class (evenly spaced hues)."""
    out = {}
    n = max(1, len(classes))
    for i, c in enumerate(classes):
        r, g, b = colorsys.hsv_to_rgb(i / n, 0.65, 0.95)
        out[c] = (int(b * 255), int(g * 255), int(r * 255))
    return out


def draw_timeline(
    predictions,
    labels: Sequence[Segment],
    classes: Sequence[str],
    duration_s: float,
    stride_s: float,
    width: int = 1400,
) -> np.ndarray:
    """BGR image: a truth lane and a prediction lane over time, and a legend of the classes."""
    names = list(dict.fromkeys([*classes, *(s.label for s in labels)]))
    colours = class_colours(names)
    left, lane_h, top = 110, 40, 30
    legend_cols = 4
    legend_rows = math.ceil(len(names) / legend_cols)
    height = top + 2 * (lane_h + 10) + 40 + legend_rows * 22 + 10
    img = np.full((height, width, 3), 255, np.uint8)
    span = max(duration_s, 1e-6)
    scale = (width - left - 20) / span

    def x(t: float) -> int:
        return left + round(max(0.0, min(t, span)) * scale)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for lane, name in enumerate(("truth", "prediction")):
        y0 = top + lane * (lane_h + 10)
        cv2.putText(img, name, (8, y0 + 26), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (left, y0), (width - 20, y0 + lane_h), (235, 235, 235), -1)
        if name == "truth":
            spans = [(s.start_s, s.end_s, s.label) for s in labels]
        else:
            spans = [
                (
                    (p.t_ref_s if p.t_ref_s is not None else p.t_s) - stride_s,
                    p.t_ref_s if p.t_ref_s is not None else p.t_s,
                    p.label,
                )
                for p in predictions
                if p.label is not None
            ]
        for a, b, lab in spans:
            cv2.rectangle(
                img,
                (x(a), y0),
                (max(x(b), x(a) + 1), y0 + lane_h),
                colours.get(lab, (128, 128, 128)),
                -1,
            )
    y_axis = top + 2 * (lane_h + 10) + 5
    step = max(1, int(span / 10) or 1)
    for t in range(0, int(span) + 1, step):
        cv2.line(img, (x(t), y_axis - 4), (x(t), y_axis + 2), (0, 0, 0), 1)
        cv2.putText(img, f"{t}s", (x(t) - 8, y_axis + 16), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    y_leg = y_axis + 32
    col_w = (width - 20) // legend_cols
    for i, name in enumerate(names):
        cx = 10 + (i % legend_cols) * col_w
        cy = y_leg + (i // legend_cols) * 22
        cv2.rectangle(img, (cx, cy - 12), (cx + 16, cy + 2), colours[name], -1)
        cv2.putText(img, name, (cx + 22, cy), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write_eval(out_dir: Path, stem: str, report: dict, timeline: np.ndarray) -> tuple[Path, Path]:
    """Write ``<stem>.eval.json`` and ``<stem>.timeline.png`` into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        jpath = out_dir / f"{stem}.eval.json"
        jpath.write_text(json.dumps(report, indent=2) + "\n")
        ppath = out_dir / f"{stem}.timeline.png"
        if not cv2.imwrite(str(ppath), timeline):
            raise OSError("OpenCV could not write the PNG")
    except OSError as exc:
        raise InputError(f"--eval-out {out_dir}: cannot write the report ({exc})") from None
    return jpath, ppath
