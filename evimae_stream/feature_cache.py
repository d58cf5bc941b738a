"""Per-window feature sequences of a session, and their on-disk cache.

A :class:`FeatureSequence` holds, for every window a run emitted, its interval (``t_start_s =
t_ref − window_s``, ``t_end_s = t_ref``, seconds of the session) and three embeddings of the
recogniser: ``imu`` (the pre-head vector of the imu_only forward), ``video`` (of video_only) and
``fused`` (of multimodal), with a flag per embedding saying whether the window had it (a window
without video has no ``video`` nor ``fused`` embedding: its rows are NaN).

The cache directory (``evimae-stream features ... --out DIR``) holds one safetensors file per
(session, model checksum, stride) and an ``index.json`` describing them::

    {"format": "evimae-stream-features", "format_version": 1,
     "entries": [{"file": "<stem>-<model>-s<stride>.safetensors",
                  "session": "/abs/path", "session_fingerprint": "<sha256[:16]>",
                  "model": "<model checksum>", "stride_s": 0.5, "window_s": 2.0,
                  "windows": 240, "dim": 192, "classes": [...],
                  "present": {"imu": 240, "video": 240, "fused": 240}}]}

and each safetensors file the tensors ``t_start_s``, ``t_end_s`` (float64, ``(N,)``),
``imu``, ``video``, ``fused`` (float32, ``(N, D)``), ``present`` (uint8, ``(N, 3)``, columns
in :data:`KINDS` order) and ``probs`` (float32, ``(N, C)``: the recogniser's class
probabilities of the window, classes as in the entry), with the run's facts in its metadata.
The session fingerprint is the sha256 of the session's files' names, sizes and modification
times: a re-recorded session misses the cache instead of reading stale features.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError

log = logging.getLogger(__name__)

FORMAT = "evimae-stream-features"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
#: the embeddings of one window, in the ``present`` column order
KINDS: tuple[str, ...] = ("imu", "video", "fused")


@dataclass
class FeatureSequence:
    """The windows of one session: intervals ``(N,)``, embeddings ``(N, D)`` per kind and
    presence ``(N, len(KINDS))``."""

    t_start_s: np.ndarray
    t_end_s: np.ndarray
    feats: dict[str, np.ndarray]
    present: np.ndarray
    about: dict = field(default_factory=dict)
    #: the recogniser's class probabilities of each window ``(N, C)`` (``about["classes"]``)
    probs: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.t_start_s)
        if len(self.t_end_s) != n or self.present.shape != (n, len(KINDS)):
            raise ValueError("feature sequence: times and presence differ in length")
        if set(self.feats) != set(KINDS):
            raise ValueError(f"feature sequence needs the kinds {KINDS}, got {sorted(self.feats)}")
        dims = {v.shape for v in self.feats.values()}
        if len(dims) != 1 or next(iter(dims))[0] != n:
            raise ValueError(f"feature sequence: embeddings must all be ({n}, D), got {dims}")
        if self.probs is not None and len(self.probs) != n:
            raise ValueError(f"feature sequence: probs must have {n} rows")

    def __len__(self) -> int:
        return len(self.t_start_s)

    @property
    def dim(self) -> int:
        return int(self.feats["imu"].shape[1])

    def counts(self) -> dict[str, int]:
        """Windows that have each kind of embedding."""
        return {k: int(self.present[:, i].sum()) for i, k in enumerate(KINDS)}


def session_fingerprint(path: str | Path) -> str:
    """sha256[:16] of the names, sizes and modification times of a session's files."""
    p = Path(path).resolve()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    digest = hashlib.sha256(str(p).encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f.relative_to(p.parent)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def save_sequence(path: Path, seq: FeatureSequence) -> None:
    """One safetensors file of ``seq`` (format in the module doc)."""
    from safetensors.numpy import save_file

    tensors = {
        "t_start_s": np.ascontiguousarray(seq.t_start_s, np.float64),
        "t_end_s": np.ascontiguousarray(seq.t_end_s, np.float64),
        "present": np.ascontiguousarray(seq.present, np.uint8),
        **{k: np.ascontiguousarray(seq.feats[k], np.float32) for k in KINDS},
    }
    if seq.probs is not None:
        tensors["probs"] = np.ascontiguousarray(seq.probs, np.float32)
    meta = {"format": FORMAT, "about": json.dumps(seq.about)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_sequence(path: str | Path) -> FeatureSequence:
    """The sequence of one safetensors file (InputError naming the file when unreadable)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = fh.metadata() or {}
            t = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iter)
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: not a readable feature file ({exc}); recompute it") from None
    if meta.get("format") != FORMAT or not {"t_start_s", "t_end_s", "present", *KINDS} <= set(t):
        raise InputError(f"{path}: not an evimae-stream feature file; recompute it")
    return FeatureSequence(
        t["t_start_s"], t["t_end_s"], {k: t[k] for k in KINDS}, t["present"].astype(bool),
        json.loads(meta.get("about", "{}")), t.get("probs"),
    )  # fmt: skip


class FeatureCache:
    """A directory of feature files and their ``index.json`` (see the module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.index_path = self.root / INDEX_FILE
        self.entries: list[dict] = []
        if self.index_path.is_file():
            try:
                doc = json.loads(self.index_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InputError(
                    f"{self.index_path}: unreadable feature index ({exc}); remove it to rebuild"
                ) from None
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise InputError(f"{self.index_path}: not an evimae-stream feature index")
            self.entries = list(doc.get("entries", []))

    @staticmethod
    def file_name(session: Path, model: str, stride_s: float, fingerprint: str) -> str:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in session.name) or "session"
        return f"{stem}-{fingerprint[:8]}-{model[:12]}-s{stride_s:g}.safetensors"

    def find(self, session: str | Path, model: str, stride_s: float) -> dict | None:
        """The entry of (session as it is now, model checksum, stride), if cached."""
        fp = session_fingerprint(session)
        for e in self.entries:
            same = (e.get("session_fingerprint"), e.get("model")) == (fp, model)
            same = same and abs(float(e.get("stride_s", -1)) - stride_s) < 1e-9
            if same and (self.root / e["file"]).is_file():
                return e
        return None

    def load(self, entry: dict) -> FeatureSequence:
        return load_sequence(self.root / entry["file"])

    def put(self, session: str | Path, model: str, stride_s: float, seq: FeatureSequence) -> dict:
        """Write ``seq`` and its index entry (replacing one of the same key)."""
        session = Path(session).resolve()
        fp = session_fingerprint(session)
        entry = {
            "file": self.file_name(session, model, stride_s, fp),
            "session": str(session),
            "session_fingerprint": fp,
            "model": model,
            "stride_s": float(stride_s),
            "window_s": float(seq.about.get("window_s", 0.0)),
            "windows": len(seq),
            "dim": seq.dim,
            "classes": list(seq.about.get("classes", [])),
            "present": seq.counts(),
        }
        save_sequence(self.root / entry["file"], seq)
        self.entries = [e for e in self.entries if e["file"] != entry["file"]] + [entry]
        doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "entries": self.entries}
        tmp = self.index_path.with_name(INDEX_FILE + ".partial")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(self.index_path)
        return entry
