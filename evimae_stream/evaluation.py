"""``--eval``: score a replay of a labelled session and draw its timeline.

Window truth: :func:`evimae_stream.truth.window_truth` (the label at the window's centre, the
rule training labels windows with; windows whose centre no label covers are not scored).
Metrics (:mod:`evimae_stream.metrics`): per-window accuracy and macro-F1, clip mAP over the
smoothed class probabilities, and WEAR-style segment mAP at tIoU 0.3:0.1:0.7 with consecutive
equal predictions merged into segments. Writes a JSON report and a PNG timeline (truth lane,
prediction lane, one colour per class, legend) drawn with OpenCV.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from evimae_stream.colours import NO_PREDICTION_COLOUR, class_colour, to_bgr
from evimae_stream.errors import InputError
from evimae_stream.metrics import (
    ScoredSegment,
    accuracy,
    clip_map,
    macro_f1,
    segment_map,
    windows_to_segments,
)
from evimae_stream.recognised import vocabulary_line
from evimae_stream.types import Segment

#: labels that mean "no activity" in published data; not scored as a class in segment mAP
IGNORE_LABELS: tuple[str, ...] = ("null",)


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
    truths = {s.label for s in labels} | {p.truth for p in predictions if p.truth is not None}
    report["vocabulary"] = {
        "overlap": bool(truths & set(classes)),
        "labels_unknown_to_model": sorted(truths - set(classes)),
        "model_classes": len(classes),
    }
    segs = merged_segments(predictions, stride_s)
    truth = [ScoredSegment(s.start_s, s.end_s, s.label) for s in labels]
    seg = segment_map(segs, truth, ignore=IGNORE_LABELS)
    report["segment_map"] = {
        "mean": _num(seg["mean"]),
        "per_tiou": {f"{k:.1f}": _num(v) for k, v in seg["per_threshold"].items()},
        "per_class": {k: _num(v) for k, v in seg["per_class"].items()},
    }
    return report


def merged_segments(predictions, stride_s: float) -> list[ScoredSegment]:
    """The run's windows merged into segments (consecutive equal labels, their mean score):
    the segments a per-window recogniser is scored by."""
    return windows_to_segments(
        [p.t_ref_s if p.t_ref_s is not None else p.t_s for p in predictions],
        [p.label for p in predictions],
        [p.score if p.score is not None else 0.0 for p in predictions],
        stride_s,
    )


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
    vocab = report["vocabulary"]
    if unknown := vocab["labels_unknown_to_model"]:
        lines.append(vocabulary_line(unknown, vocab["overlap"], vocab["model_classes"]))
    return lines


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BLACK = (0, 0, 0)
#: the vocabulary warning's colour (BGR, dark red)
_WARN = (28, 28, 183)


def timeline_legend(classes: Sequence[str], labels: Sequence[Segment]) -> list[tuple[str, str]]:
    """(name, ``#rrggbb``) of the timeline's legend: every class and truth label in the
    monitor's colours (:mod:`evimae_stream.colours`), and the empty lane's "no prediction"."""
    names = list(dict.fromkeys([*classes, *(s.label for s in labels)]))
    return [(n, class_colour(n, names)) for n in names] + [("no prediction", NO_PREDICTION_COLOUR)]


def draw_timeline(
    predictions,
    labels: Sequence[Segment],
    classes: Sequence[str],
    duration_s: float,
    stride_s: float,
    width: int = 1400,
    warning: str | None = None,
    segments: Sequence[ScoredSegment] | None = None,
) -> np.ndarray:
    """BGR image: ``warning`` (if any) over a truth lane, a prediction lane and (given
    ``segments``, ``--segments``) the interval head's segment lane over time, the time axis,
    and a legend of the classes (with "no prediction")."""
    legend = timeline_legend(classes, labels)
    colours = {name: to_bgr(c) for name, c in legend}
    for s in segments or ():
        colours.setdefault(s.label, to_bgr(class_colour(s.label, [*colours, s.label])))
    lanes = ("truth", "prediction") + (("segments",) if segments is not None else ())
    left, lane_h, top = 110, 40, 30 + (22 if warning else 0)
    legend_cols = 4
    height = top + len(lanes) * (lane_h + 10) + 40 + math.ceil(len(legend) / legend_cols) * 22 + 10
    img = np.full((height, width, 3), 255, np.uint8)
    span = max(duration_s, 1e-6)
    scale = (width - left - 20) / span

    def x(t: float) -> int:
        return left + round(max(0.0, min(t, span)) * scale)

    if warning:
        cv2.putText(img, warning, (8, 24), _FONT, 0.45, _WARN, 1, cv2.LINE_AA)
    for lane, name in enumerate(lanes):
        y0 = top + lane * (lane_h + 10)
        cv2.putText(img, name, (8, y0 + 26), _FONT, 0.55, _BLACK, 1, cv2.LINE_AA)
        cv2.rectangle(img, (left, y0), (width - 20, y0 + lane_h), colours["no prediction"], -1)
        if name == "truth":
            spans = [(s.start_s, s.end_s, s.label) for s in labels]
        elif name == "segments":  # lowest score first, so the best is drawn on top
            spans = [(s.start_s, s.end_s, s.label) for s in sorted(segments, key=_score)]
        else:
            ends = [(p.t_ref_s if p.t_ref_s is not None else p.t_s, p.label) for p in predictions]
            spans = [(t - stride_s, t, lab) for t, lab in ends if lab is not None]
        for a, b, lab in spans:
            cv2.rectangle(img, (x(a), y0), (max(x(b), x(a) + 1), y0 + lane_h), colours[lab], -1)
    y_axis = top + len(lanes) * (lane_h + 10) + 5
    _draw_axis(img, x, span, y_axis)
    col_w = (width - 20) // legend_cols
    for i, (name, _) in enumerate(legend):
        cx = 10 + (i % legend_cols) * col_w
        cy = y_axis + 32 + (i // legend_cols) * 22
        cv2.rectangle(img, (cx, cy - 12), (cx + 16, cy + 2), colours[name], -1)
        cv2.rectangle(img, (cx, cy - 12), (cx + 16, cy + 2), (150, 150, 150), 1)
        cv2.putText(img, name, (cx + 22, cy), _FONT, 0.45, _BLACK, 1, cv2.LINE_AA)
    return img


def _score(s: ScoredSegment) -> float:
    return s.score


def _draw_axis(img: np.ndarray, x, span: float, y: int) -> None:
    """Ticks about every tenth of ``span`` with their labels, each label kept inside the
    image (the last one sits at the right edge)."""
    width = img.shape[1]
    step = max(1, int(span / 10) or 1)
    for t in range(0, int(span) + 1, step):
        cv2.line(img, (x(t), y - 4), (x(t), y + 2), _BLACK, 1)
        text = f"{t}s"
        (w, _), _ = cv2.getTextSize(text, _FONT, 0.4, 1)
        tx = min(max(0, x(t) - w // 2), width - w - 2)
        cv2.putText(img, text, (tx, y + 16), _FONT, 0.4, _BLACK, 1, cv2.LINE_AA)


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
