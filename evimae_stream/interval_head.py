"""The interval head of an artifact: the interval model (:mod:`evimae_stream.model.interval`)
with what it needs to run on feature sequences — its context length and window stride, its
query pyramid and NMS threshold — and its two uses:

- :meth:`IntervalHead.detect`: action segments of a feature sequence. Contexts of
  ``context_s`` seconds every ``context_s / 2``; in each, the dense multi-scale queries are
  classified and regressed; every (query, class) above ``min_score`` is a candidate; the
  best :data:`PER_CONTEXT` of each context after its own per-class NMS
  (:func:`evimae_stream.intervals.nms`) have their boundaries refined
  (:func:`evimae_stream.intervals.refine`, with ``refine`` on) by the window head's evidence
  (each window's class probabilities, averaged over the contexts that hold it) and go through
  one more NMS over the whole sequence.
- :meth:`IntervalHead.recognise`: the class of given intervals (e.g. ground-truth segments),
  each queried in a context centred on it (longer ones in context-long pieces, scores averaged).

A context's tokens are the windows that end inside it; window and query times are relative to
the context (0 = its start, 1 = its end). On disk: ``interval.safetensors`` next to the
recogniser's weights and the ``interval`` section of ``model.json``
(:class:`IntervalMeta`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evimae_stream.feature_cache import KINDS, FeatureSequence
from evimae_stream.intervals import decode, dense_queries, nms, refine
from evimae_stream.metrics import ScoredSegment
from evimae_stream.model.interval import MODALITIES, IntervalConfig, IntervalModel

WEIGHTS_FILE = "interval.safetensors"
#: detections a context keeps after its own NMS (the whole sequence's NMS then merges them)
PER_CONTEXT = 50


@dataclass
class IntervalMeta:
    """The ``interval`` section of ``model.json``: the model's config, the segment classes (the
    recogniser's, or those of the data it was trained on), the context it sees (``context_s``)
    and the stride its features were cut at (``stride_s``), the smallest query (a fraction of
    the context), the NMS tIoU, the score floor of a detection (``min_score``) and of a live
    segment (``open_score``, :mod:`evimae_stream.runtime.segmenter`), whether detections'
    boundaries are refined by the window head's evidence (``refine``), and its weights'
    checksum."""

    config: dict[str, Any]
    classes: list[str]
    context_s: float
    stride_s: float
    query_min_size: float = 0.0625
    nms_iou: float = 0.5
    min_score: float = 0.05
    open_score: float = 0.3
    refine: bool = True
    weights_sha256: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (self.context_s > 0 and self.stride_s > 0 and self.context_s >= 2 * self.stride_s):
            raise ValueError(
                f"interval: context_s ({self.context_s}) must be >= 2 strides ({self.stride_s})"
            )
        if not 0 < self.query_min_size < 1 or not 0 < self.nms_iou <= 1:
            raise ValueError("interval: query_min_size must be in (0, 1) and nms_iou in (0, 1]")
        if not (0 <= self.min_score < 1 and 0 <= self.open_score < 1):
            raise ValueError("interval: min_score and open_score must be in [0, 1)")
        if len(self.classes) != self.model_config.num_classes:
            raise ValueError(
                f"interval: {len(self.classes)} classes but config.num_classes is "
                f"{self.model_config.num_classes}"
            )

    @property
    def model_config(self) -> IntervalConfig:
        try:
            return IntervalConfig(**self.config)
        except TypeError as exc:
            raise ValueError(f"interval.config: {exc}") from None

    @property
    def windows(self) -> int:
        """Feature windows a context holds at most."""
        return math.ceil(self.context_s / self.stride_s) + 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """One context's model inputs (batch 1) and where it lies in the session."""

    start_s: float
    feats: torch.Tensor  # (1, N, M, F)
    present: torch.Tensor  # (1, N, M)
    times: torch.Tensor  # (1, N, 2)
    rows: np.ndarray  # (n,) the sequence's windows in the first n of the N slots


def context_inputs(seq: FeatureSequence, start_s: float, meta: IntervalMeta) -> Context:
    """The tokens of the windows of ``seq`` that end in ``[start_s, start_s + context_s]``,
    padded to :attr:`IntervalMeta.windows` (absent)."""
    c, n = meta.context_s, meta.windows
    sel = np.nonzero((seq.t_end_s > start_s) & (seq.t_end_s <= start_s + c + 1e-9))[0][-n:]
    dim = seq.dim
    feats = np.zeros((n, len(MODALITIES), dim), np.float32)
    present = np.zeros((n, len(MODALITIES)), bool)
    times = np.zeros((n, 2), np.float32)
    for m, kind in enumerate(MODALITIES):
        k = KINDS.index(kind)
        feats[: len(sel), m] = np.nan_to_num(seq.feats[kind][sel])
        present[: len(sel), m] = seq.present[sel, k]
    times[: len(sel), 0] = (seq.t_start_s[sel] - start_s) / c
    times[: len(sel), 1] = (seq.t_end_s[sel] - start_s) / c
    return Context(
        start_s, torch.from_numpy(feats)[None], torch.from_numpy(present)[None],
        torch.from_numpy(times)[None], sel,
    )  # fmt: skip


class IntervalHead:
    """The interval model and its :class:`IntervalMeta` (see the module doc)."""

    def __init__(self, model: IntervalModel, meta: IntervalMeta) -> None:
        self.model = model.eval()
        self.meta = meta
        self.classes = list(meta.classes)
        self.queries = torch.from_numpy(dense_queries(meta.query_min_size))  # (Q, 2)

    @torch.inference_mode()
    def run(self, ctx: Context, queries: torch.Tensor) -> tuple[np.ndarray, ...]:
        """(class probabilities ``(Q, K)``, regressed intervals ``(Q, 2)`` in context units,
        the window head's class probabilities ``(n, K)`` of the context's windows: 0 for a
        window with no modality)."""
        logits, offsets, windows = self.model(ctx.feats, ctx.present, ctx.times, queries[None])
        segs = decode(queries[None], offsets).clamp(0.0, 1.0)
        n = len(ctx.rows)
        evidence = torch.sigmoid(windows)[0, :n] * ctx.present[0, :n].any(-1, keepdim=True)
        return torch.sigmoid(logits)[0].numpy(), segs[0].numpy(), evidence.numpy()

    def candidates(self, ctx: Context) -> tuple[list[ScoredSegment], np.ndarray]:
        """(candidates of one context before NMS, in session seconds, unrefined; the window
        head's probabilities ``(n, K)`` of its windows)."""
        probs, segs, windows = self.run(ctx, self.queries)
        q, k = np.nonzero(probs >= self.meta.min_score)
        c = self.meta.context_s
        out = []
        for qi, ki in zip(q.tolist(), k.tolist(), strict=True):
            s, e = segs[qi] * c + ctx.start_s
            if e > s:
                out.append(
                    ScoredSegment(float(s), float(e), self.classes[ki], float(probs[qi, ki]))
                )
        return out, windows

    def refined(self, cands: list[ScoredSegment], evidence: np.ndarray, centres: np.ndarray
                ) -> list[ScoredSegment]:  # fmt: skip
        """``cands`` with boundaries refined by window ``evidence (n, K)`` at ``centres (n,)``
        (unchanged with ``refine`` off or no windows)."""
        if not self.meta.refine or len(centres) < 2:
            return cands
        out = []
        for d in cands:
            k = self.classes.index(d.label)
            s, e = refine((d.start_s, d.end_s), evidence[:, k], centres)
            out.append(ScoredSegment(s, e, d.label, d.score))
        return out

    def detect_context(self, ctx: Context, seq: FeatureSequence) -> list[ScoredSegment]:
        """The detections of one context of ``seq`` as :meth:`detect` finds them in each of
        its contexts: the best :data:`PER_CONTEXT` after per-class NMS, refined by its windows
        (refining only the survivors: every stride of a live run pays for it)."""
        cands, windows = self.candidates(ctx)
        kept = self.suppress(cands, PER_CONTEXT)
        return self.refined(kept, windows, _centres(seq, ctx.rows))

    def suppress(self, cands: list[ScoredSegment], max_out: int | None = None) -> list:
        """Per-class NMS of candidates, highest score first."""
        if not cands:
            return []
        keep = nms(
            np.array([(s.start_s, s.end_s) for s in cands]), np.array([s.score for s in cands]),
            np.array([s.label for s in cands]), self.meta.nms_iou, max_out,
        )  # fmt: skip
        return [cands[i] for i in keep]

    def detect(self, seq: FeatureSequence, max_out: int = 1000) -> list[ScoredSegment]:
        """Action segments of a whole sequence (see the module doc)."""
        if not len(seq):
            return []
        c = self.meta.context_s
        first, last = float(seq.t_start_s.min()), float(seq.t_end_s.max())
        starts = np.arange(first, max(first, last - c / 2) + 1e-9, c / 2)
        cands = []
        evidence = np.zeros((len(seq), len(self.classes)))
        seen = np.zeros(len(seq))
        for t0 in starts:
            ctx = context_inputs(seq, t0, self.meta)
            found, windows = self.candidates(ctx)
            cands += self.suppress(found, PER_CONTEXT)
            evidence[ctx.rows] += windows
            seen[ctx.rows] += 1
        rows = np.nonzero(seen)[0]
        evidence = evidence[rows] / seen[rows, None]
        return self.suppress(self.refined(cands, evidence, _centres(seq, rows)), max_out)

    def recognise(
        self, seq: FeatureSequence, intervals: list[tuple[float, float]]
    ) -> list[tuple[str, float]]:
        """(label, score) of each interval (see the module doc)."""
        c = self.meta.context_s
        out = []
        for a, b in intervals:
            pieces = max(1, math.ceil((b - a) / c - 1e-9))
            edges = np.linspace(a, b, pieces + 1)
            probs = []
            for s, e in itertools.pairwise(edges):
                t0 = (s + e) / 2 - c / 2
                q = torch.tensor([[(s - t0) / c, (e - t0) / c]], dtype=torch.float32)
                probs.append(self.run(context_inputs(seq, t0, self.meta), q)[0][0])
            mean = np.mean(probs, axis=0)
            out.append((self.classes[int(mean.argmax())], float(mean.max())))
        return out


def _centres(seq: FeatureSequence, rows: np.ndarray) -> np.ndarray:
    """The centres (seconds) of windows ``rows`` of ``seq``: where their label is told."""
    return 0.5 * (seq.t_start_s[rows] + seq.t_end_s[rows])


def save_interval(model: IntervalModel, meta: IntervalMeta, art_dir: Path) -> IntervalMeta:
    """Write ``interval.safetensors``; returns ``meta`` with its checksum (for model.json)."""
    from safetensors.torch import save_file

    from evimae_stream.artifact import file_sha256

    path = Path(art_dir) / WEIGHTS_FILE
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"format": "evimae-stream-interval"})
    meta.weights_sha256 = file_sha256(path)
    return meta


def load_interval(art_dir: Path, meta: IntervalMeta) -> IntervalHead:
    """The interval head of an artifact (ArtifactError for a missing or mismatching file)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from evimae_stream.artifact import file_sha256
    from evimae_stream.errors import ArtifactError

    path = Path(art_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise ArtifactError(f"{path}: missing; model.json has an interval section")
    if meta.weights_sha256 and file_sha256(path) != meta.weights_sha256:
        raise ArtifactError(f"{path}: checksum does not match model.json; re-export the model")
    cfg = meta.model_config
    try:
        state = load_file(str(path))
        model = IntervalModel(cfg)
        model.load_state_dict(state, strict=True)
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: does not fit interval.config ({exc})") from None
    return IntervalHead(model, meta)
