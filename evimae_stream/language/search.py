"""Searching recordings with a language-aligned model: by a sentence, or by a moment's motion.

A session's windows are embedded once (:func:`session_embeddings`): a ``--speed max`` replay
through the runtime's composer, so every window is exactly the one ``--replay`` would score,
with a scorer that keeps each window's IMU and video embeddings. They are cached next to the
session (inside a session directory, ``.embeddings/``; beside a session file,
``.<name>.embeddings/``) under a key of the model's checksum and the stride, so another model or
stride computes them again and the stale file is removed.

Ranking (:func:`rank`): the cosine of each window's embedding with the query, best first, one
hit per moment (a window overlapping a better hit of the same session is dropped, so the top K
are K different moments). A text query is compared with the IMU embeddings (the side aligned to
text); ``--like SESSION@T`` takes the IMU embedding of the window centred nearest T and ranks the
IMU embeddings (IMU→IMU) and the video embeddings (IMU→video).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError

log = logging.getLogger(__name__)

CACHE_VERSION = 1


@dataclass
class SessionEmbeddings:
    """One session's window embeddings: window ends ``t_ref_s`` (N,), ``imu`` (N, D) and
    ``video`` (N, D) or None, and the window length."""

    path: Path
    t_ref_s: np.ndarray
    imu: np.ndarray
    video: np.ndarray | None
    window_s: float


@dataclass(frozen=True)
class Hit:
    """One ranked interval of a session."""

    session: Path
    start_s: float
    end_s: float
    score: float
    by: str  # which embeddings matched: "imu" or "video"

    @property
    def centre_s(self) -> float:
        return 0.5 * (self.start_s + self.end_s)


def cache_file(path: Path, model_id: str, stride_s: float) -> Path:
    """Where the embeddings of ``path`` for this model and stride live."""
    folder = path / ".embeddings" if path.is_dir() else path.parent / f".{path.name}.embeddings"
    return folder / f"{model_id}-stride{stride_s:g}.npz"


class _Collect:
    """A runtime sink keeping every window's embeddings."""

    def __init__(self) -> None:
        self.rows: list[tuple[float, dict]] = []

    def emit(self, pred) -> None:
        if pred.embeddings and pred.t_ref_s is not None:
            self.rows.append((pred.t_ref_s, pred.embeddings))


def _compute(loaded, session, stride_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    from evimae_stream.language.meta import LanguageMeta
    from evimae_stream.language.scorer import LanguageScorer
    from evimae_stream.language.vocabulary import class_vocabulary
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel

    lang = LanguageMeta.from_dict(loaded.meta.language, loaded.meta.classes)
    vocab = class_vocabulary(lang, loaded.meta.classes)
    video = session.has_video and lang.align_config.video and bool(session.imu)
    spec = replace(loaded.spec, modes=("multimodal",)) if video else loaded.spec
    scorer = LanguageScorer(loaded.model, vocab, both=True)
    run = LoadedModel(loaded.model, spec, loaded.model_id, loaded.path, loaded.meta.variant, scorer)
    sink = _Collect()
    Composer(run, RuntimeConfig(stride_s=stride_s), Hooks(sinks=[sink])).replay(session, None)
    if not sink.rows:
        raise InputError(f"{session.path}: no window to embed (too short for the model?)")
    t = np.array([r[0] for r in sink.rows])
    imu = np.stack([r[1]["imu"] for r in sink.rows]) if "imu" in sink.rows[0][1] else None
    vid = np.stack([r[1]["video"] for r in sink.rows]) if video else None
    if imu is None:
        raise InputError(f"{session.path}: has no IMU data; search ranks IMU windows")
    return t, imu, vid


def session_embeddings(loaded, path: Path, stride_s: float) -> SessionEmbeddings:
    """The cached embeddings of the session at ``path`` (computed and cached when missing or
    made by another model or stride). ``loaded``: :class:`SearchModel`."""
    from evimae_stream.sessions import open_session

    path = Path(path)
    f = cache_file(path, loaded.model_id, stride_s)
    if f.is_file():
        try:
            with np.load(f) as z:
                if int(z["version"]) == CACHE_VERSION:
                    vid = z["video"] if z["video"].size else None
                    return SessionEmbeddings(path, z["t_ref_s"], z["imu"], vid, loaded.window_s)
        except (OSError, ValueError, KeyError):
            log.warning("%s: unreadable embedding cache; computing again", f)
    with open_session(path) as session:
        t, imu, vid = _compute(loaded, session, stride_s)
    f.parent.mkdir(parents=True, exist_ok=True)
    for stale in f.parent.glob("*.npz"):
        stale.unlink()
    tmp = f.with_suffix(".tmp.npz")
    np.savez(tmp, version=CACHE_VERSION, t_ref_s=t, imu=imu,
             video=vid if vid is not None else np.zeros((0,)))  # fmt: skip
    tmp.replace(f)
    log.info("%s: %d windows embedded, cached in %s", path, len(t), f)
    return SessionEmbeddings(path, t, imu, vid, loaded.window_s)


@dataclass
class SearchModel:
    """An aligned model as search uses it: the loaded module, its meta and spec, and the id its
    caches are keyed by (the artifact's checksum)."""

    model: object
    meta: object
    spec: object
    model_id: str
    path: str

    @property
    def window_s(self) -> float:
        return float(self.meta.window_s)


def rank(
    items: list[SessionEmbeddings], query: np.ndarray, top: int, by: str = "imu",
    exclude: tuple[Path, float] | None = None,
) -> list[Hit]:  # fmt: skip
    """The ``top`` best moments over ``items`` by cosine with ``query`` (D,), one per moment;
    ``exclude``: (session, t) whose overlapping windows are left out (the query itself)."""
    cands = []
    for e in items:
        emb = e.imu if by == "imu" else e.video
        if emb is None:
            continue
        for t, s in zip(e.t_ref_s.tolist(), (emb @ query).tolist(), strict=True):
            cands.append((s, e.path, t, e.window_s))
    cands.sort(key=lambda c: -c[0])
    hits: list[Hit] = []
    for s, path, t, w in cands:
        if exclude is not None and path == exclude[0] and abs(t - w / 2 - exclude[1]) < w:
            continue
        if any(h.session == path and abs(h.end_s - t) < w for h in hits):
            continue
        hits.append(Hit(path, max(0.0, t - w), t, float(s), by))
        if len(hits) == top:
            break
    return hits


def window_at(e: SessionEmbeddings, t_s: float) -> int:
    """The index of the window of ``e`` whose centre is nearest ``t_s``."""
    centres = e.t_ref_s - e.window_s / 2
    return int(np.argmin(np.abs(centres - t_s)))
