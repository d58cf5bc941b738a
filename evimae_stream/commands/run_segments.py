"""``--segments`` of the main command: the artifact's interval head, the segmenter that runs it
every stride (:mod:`evimae_stream.runtime.segmenter`), and the ``segments`` part of ``--eval``
(segment mAP and interval recognition accuracy of the head against the windows merged into
segments, on the same run)."""

from __future__ import annotations

from pathlib import Path

from evimae_stream.errors import InputError


def load_head(model_dir: Path, meta):
    """The interval head of the artifact at ``model_dir`` (InputError when it has none)."""
    from evimae_stream.interval_head import IntervalMeta, load_interval

    if meta.interval is None:
        raise InputError(
            f"--segments: {model_dir} has no interval head; train one with "
            "`python training/train.py --config configs/train/interval_demo.yaml`"
        )
    return load_interval(model_dir, IntervalMeta(**meta.interval))


def check_stride(head, stride_s: float) -> None:
    """The run's windows must come at the stride the head's features were cut at."""
    if abs(stride_s - head.meta.stride_s) > 1e-9:
        raise InputError(
            f"--segments: the interval head runs on windows every {head.meta.stride_s:g} s; "
            f"pass --stride {head.meta.stride_s:g} (got {stride_s:g})"
        )


def segment_hooks(head, loaded, keep_s: float | None = None):
    """(hooks, backend) of a run with ``--segments``; ``keep_s``: seconds of features kept
    (``--eval`` keeps the whole session)."""
    from evimae_stream.runtime.features import EmbeddingBackend
    from evimae_stream.runtime.run import Hooks
    from evimae_stream.runtime.segmenter import Segmenter

    backend = EmbeddingBackend(loaded.model)
    segmenter = Segmenter(head, backend, loaded.spec.window_s, keep_s=keep_s)
    return Hooks(segments=segmenter), backend


def segments_section(segmenter, predictions, labels, stride_s: float) -> dict:
    """The eval report's ``segments``: the head's detections over the run's features and the
    baseline of the same run's windows merged into segments (``--eval``'s own merge)."""
    from evimae_stream.evaluation import merged_segments
    from evimae_stream.interval_eval import segments_report
    from evimae_stream.metrics import ScoredSegment

    truth = [ScoredSegment(s.start_s, s.end_s, s.label) for s in labels]
    seq = segmenter.ring.sequence()
    report = segments_report(segmenter.head, seq, truth, merged_segments(predictions, stride_s))
    report["live"] = segmenter.summary()
    return report


def summary_line(seg: dict) -> str:
    """The exit summary's segment line: how many, and what the head adds to the latency."""
    p50, p95 = seg["interval_ms_p50"], seg["interval_ms_p95"]
    head = "n/a" if p50 is None else f"p50 {p50:.1f} p95 {p95:.1f}"
    return (
        f"segments {seg['segments']} closed; interval head ms {head} per stride, on top of "
        f"the window latency; feature ring {seg['feature_ring_bytes'] / 1024:.0f} KiB (fixed)"
    )


def lane_segments(section: dict, min_score: float) -> list:
    """The head's segments drawn on the timeline PNG: those scoring ``min_score`` or more."""
    from evimae_stream.metrics import ScoredSegment

    return [
        ScoredSegment(s["start_s"], s["end_s"], s["label"], s["score"])
        for s in section["interval"]["segments"]
        if s["score"] >= min_score
    ]


def table_lines(section: dict) -> list[str]:
    """Rows of the printed eval table: both methods' segment mAP, the recognition accuracy."""

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    iv, mw = section["interval"], section["merged_windows"]
    lines = [f"{'interval head (TIM)':<26}{'interval':>9}{'windows':>9}"]
    for thr, v in iv["segment_map"]["per_tiou"].items():
        base = mw["segment_map"]["per_tiou"].get(thr)
        lines.append(f"{'segment mAP @ tIoU ' + thr:<26}{f(v):>9}{f(base):>9}")
    lines.append(
        f"{'segment mAP (mean)':<26}{f(iv['segment_map']['mean']):>9}"
        f"{f(mw['segment_map']['mean']):>9}"
    )
    lines.append(f"{'interval recognition acc':<26}{f(iv['recognition_accuracy']):>9}")
    return lines
