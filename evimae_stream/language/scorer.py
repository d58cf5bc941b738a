"""Scoring a window against a vocabulary with a language-aligned model (what ``--vocabulary``
and ``search`` run on every window).

The window's embedding is the IMU one whenever the window has IMU data (the IMU side is what
the ``align`` objective ties to text), else the video one (aligned to the IMU side, so to text
only through it). The logits are ``cos(embedding, name) / T`` at the model's learned temperature
``T``; the recogniser softmaxes and smooths them as it does a classifier's logits.

The vocabulary can be replaced while a run goes on (:meth:`LanguageScorer.set_vocabulary`, the
GUI's editor): each window reads one vocabulary, whole, and the ``version`` tells the recogniser
to start its smoothing over, since the names changed.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from evimae_stream.language.vocabulary import Vocabulary
from evimae_stream.model.align import embed


class LanguageScorer:
    """``score(inputs, mode) -> (logits (K,), names, embeddings)`` for one window.

    ``both``: also embed the other modality the window has (search keeps IMU and video
    embeddings of every window); by default only the one that is scored is computed.
    """

    def __init__(self, model, vocabulary: Vocabulary, both: bool = False) -> None:
        self.model = model
        self.both = both
        self._lock = threading.Lock()
        self._vocab = vocabulary
        self.version = 0

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    @property
    def names(self) -> tuple[str, ...]:
        return self._vocab.names

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Score the next windows against ``vocabulary`` (thread-safe; no restart)."""
        with self._lock:
            self._vocab = vocabulary
            self.version += 1

    @torch.no_grad()
    def score(self, inputs, mode: str) -> tuple[torch.Tensor, tuple[str, ...], dict, int]:
        """Logits over the current vocabulary's names, those names, the window's embeddings
        (``{"imu"|"video": (dim,) float32}``) and the vocabulary's version."""
        with self._lock:
            vocab, version = self._vocab, self.version
        imu = inputs.imu if mode != "video_only" else None
        video = inputs.video if (mode == "video_only" or self.both) else None
        emb = embed(self.model, imu, video)
        query = emb["imu"] if "imu" in emb else emb["video"]  # (1, dim)
        names = torch.from_numpy(vocab.embeddings).to(query.device)
        logits = self.model.align.scale * (query @ names.T)  # (1, K)
        out = {k: v[0].cpu().numpy().astype(np.float32) for k, v in emb.items()}
        return logits[0], vocab.names, out, version


def vocabulary_scorer(arg: str, model, meta, model_name: str, where: str = "--vocabulary"):
    """The scorer of ``--vocabulary ARG`` for a loaded model; InputError (exit 2) when the model
    is not language-aligned, the vocabulary is malformed or the text encoder is missing."""
    from evimae_stream.errors import InputError
    from evimae_stream.language.text import TextCache
    from evimae_stream.language.vocabulary import build_vocabulary, parse_vocabulary

    if not meta.aligned:
        raise InputError(
            f"{where}: model {model_name} is not language-aligned (no 'language' section in its "
            "model.json); train one with objective align (training/train.py) or drop --vocabulary"
        )
    spec = parse_vocabulary(arg, where)
    check_encoder(meta, where)
    return LanguageScorer(model, build_vocabulary(spec, TextCache(where=where)))


def check_encoder(meta, where: str) -> None:
    """InputError unless the installed text encoder is the one the model was aligned to."""
    from evimae_stream.errors import InputError
    from evimae_stream.language.text import encoder_id

    have = encoder_id(where).to_dict()
    want = meta.language["text_encoder"]
    if (have["name"], have["dim"]) != (want["name"], want["dim"]):
        raise InputError(
            f"{where}: the model was aligned to text encoder {want['name']} ({want['dim']}-d) "
            f"but {have['name']} ({have['dim']}-d) is installed; install {want['package']}"
        )
