"""Window features from a recognition run: the recogniser's embeddings of every window it
infers, through the same windows, preprocessing and forward as its predictions.

:class:`EmbeddingBackend` is the eager backend that, besides the logits of the window's mode,
keeps the pre-head vector (the input of ``mlp_head``: pooled tokens plus the graph readout) of
every forward mode the window's inputs allow: ``imu`` (imu_only), ``video`` (video_only) and
``fused`` (multimodal). Its logits are exactly eager fp32's, so a run with it predicts what a
run without it predicts. :class:`FeatureRecorder` is the sink that pairs each prediction with
the embeddings of its forward (inference and emission happen in one thread, one window after
the other) and appends them to a :class:`FeatureRing`, a preallocated ring of fixed memory.
:func:`extract_features` replays a session at max speed through the :class:`Composer` with
both and returns its :class:`~evimae_stream.feature_cache.FeatureSequence`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from evimae_stream.feature_cache import KINDS, FeatureSequence
from evimae_stream.runtime.backends.base import ModelInputs
from evimae_stream.runtime.backends.eager import EagerBackend

log = logging.getLogger(__name__)

#: the forward mode that gives each kind of embedding
KIND_MODES: dict[str, str] = {"imu": "imu_only", "video": "video_only", "fused": "multimodal"}


class EmbeddingBackend(EagerBackend):
    """Eager fp32 that also keeps each window's embeddings (see the module doc); ``latest``
    holds those of the last forward until :meth:`take` hands them over."""

    name = "eager+features"

    def __init__(self, model, device: torch.device | None = None) -> None:
        super().__init__(model, "fp32", device)
        self.latest: dict[str, np.ndarray] | None = None
        self._captured: list[torch.Tensor] = []
        self.model.mlp_head.register_forward_pre_hook(self._capture)

    def _capture(self, _module, args) -> None:
        self._captured[:] = [args[0].detach()]  # the last forward's only

    def _run(self, tensors: tuple[torch.Tensor, ...], mode: str) -> torch.Tensor:
        inputs = ModelInputs.from_mode(mode, tensors)
        found: dict[str, np.ndarray] = {}
        logits = None
        # the window's own mode first: its logits are the prediction's
        for kind, m in sorted(KIND_MODES.items(), key=lambda kv: kv[1] != mode):
            if not inputs.supports(m):
                continue
            self._captured.clear()
            out = self.model(inputs.imu, inputs.video, m)  # (1, classes)
            found[kind] = self._captured[-1][0].float().cpu().numpy()  # (D,)
            if m == mode:
                logits = out
        self.latest = found
        assert logits is not None
        return logits

    def take(self) -> dict[str, np.ndarray] | None:
        out, self.latest = self.latest, None
        return out


class FeatureRing:
    """The newest ``capacity`` windows' intervals and embeddings, preallocated on the first
    append (when the width is known): memory is fixed, the oldest window is overwritten."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"feature ring capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.count = 0  # windows appended so far
        self._times = np.zeros((capacity, 2), np.float64)
        self._present = np.zeros((capacity, len(KINDS)), bool)
        self._feats: np.ndarray | None = None  # (capacity, kinds, D)
        self._probs: np.ndarray | None = None  # (capacity, C)

    @property
    def nbytes(self) -> int:
        extra = 0 if self._feats is None else self._feats.nbytes + self._probs.nbytes
        return self._times.nbytes + self._present.nbytes + extra

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def append(
        self, t_start_s: float, t_end_s: float, feats: dict[str, np.ndarray], probs: np.ndarray
    ) -> None:
        """One window (``feats``: the kinds it has, each ``(D,)``; ``probs``: ``(C,)``)."""
        if self._feats is None:
            dim = len(next(iter(feats.values())))
            self._feats = np.full((self.capacity, len(KINDS), dim), np.nan, np.float32)
            self._probs = np.zeros((self.capacity, len(probs)), np.float32)
        i = self.count % self.capacity
        self._times[i] = (t_start_s, t_end_s)
        self._probs[i] = probs
        for k, kind in enumerate(KINDS):
            v = feats.get(kind)
            self._present[i, k] = v is not None
            self._feats[i, k] = np.nan if v is None else v
        self.count += 1

    def keep_newest(self) -> None:
        """Forget every window but the newest (a replay seeked: the rest is another pass)."""
        if not self.count:
            return
        i = (self.count - 1) % self.capacity
        for arr in (self._times, self._present, self._feats, self._probs):
            if arr is not None:
                arr[0] = arr[i]
        self.count = 1

    def sequence(self, since_s: float | None = None, about: dict | None = None) -> FeatureSequence:
        """The windows held, oldest first (only those ending after ``since_s`` when given)."""
        n = len(self)
        order = (np.arange(self.count - n, self.count) % self.capacity) if n else np.arange(0)
        if since_s is not None and n:
            order = order[self._times[order, 1] > since_s]
        dim = 0 if self._feats is None else self._feats.shape[2]
        feats = {
            kind: (self._feats[order, k] if self._feats is not None else np.zeros((0, dim)))
            for k, kind in enumerate(KINDS)
        }
        times = self._times[order]
        probs = None if self._probs is None else self._probs[order]
        return FeatureSequence(
            times[:, 0].copy(), times[:, 1].copy(), feats, self._present[order].copy(),
            dict(about or {}), probs,
        )  # fmt: skip


class FeatureRecorder:
    """The sink that appends every inferred window's embeddings to ``ring`` (see the module
    doc); ``on_window``: called after each append (the live segmenter)."""

    def __init__(self, backend: EmbeddingBackend, ring: FeatureRing, window_s: float,
                 on_window=None) -> None:  # fmt: skip
        self.backend = backend
        self.ring = ring
        self.window_s = window_s
        self.on_window = on_window

    def emit(self, pred) -> None:
        feats = self.backend.take()
        if not feats or pred.label is None:
            return
        t_end = pred.t_ref_s if pred.t_ref_s is not None else pred.t_s
        self.ring.append(t_end - self.window_s, t_end, feats, pred.probs)
        if self.on_window is not None:
            self.on_window(pred)


def ring_for(duration_s: float, stride_s: float) -> FeatureRing:
    """A ring that holds every window of ``duration_s`` seconds at ``stride_s``."""
    return FeatureRing(max(1, math.ceil(duration_s / stride_s) + 2))


def extract_features(loaded, session, stride_s: float) -> FeatureSequence:
    """The feature sequence of ``session`` through ``loaded``'s model: a ``--speed max``
    replay by the :class:`~evimae_stream.runtime.run.Composer` at ``stride_s``."""
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.run import Composer, Hooks

    backend = EmbeddingBackend(loaded.model)
    ring = ring_for(session.duration_s, stride_s)
    recorder = FeatureRecorder(backend, ring, loaded.spec.window_s)
    config = RuntimeConfig(stride_s=stride_s, backend="eager", timed_auto=False)
    Composer(loaded, config, Hooks(sinks=[recorder]), backend=backend).replay(session, None)
    about = {
        "session": str(session.path),
        "stride_s": stride_s,
        "window_s": loaded.spec.window_s,
        "classes": list(loaded.spec.classes),
        "model": loaded.model_id,
    }
    return ring.sequence(about=about)
