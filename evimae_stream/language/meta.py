"""The ``language`` section of a language-aligned model's ``model.json``.

An artifact trained with the ``align`` objective says so here: which text encoder its space is
(name, package, version, dimension: :class:`~evimae_stream.language.text.TextEncoderId`), the
shapes of its projection heads (:class:`~evimae_stream.model.align.AlignConfig`; their weights
are the ``align.*`` tensors of ``model.safetensors``), the learned temperature, and the prompt
embeddings of its classes (the texts each class was embedded from and the unit vectors), so
it recognises its own classes by text with no text encoder installed. Artifacts without the
section load as before.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from evimae_stream.model.align import AlignConfig

_ENCODER_KEYS = ("name", "package", "version", "dim")


@dataclass(frozen=True)
class LanguageMeta:
    """The typed ``language`` section (validated on construction; ValueError names the field)."""

    text_encoder: dict[str, Any]
    heads: dict[str, Any]
    temperature: float
    class_prompts: dict[str, list[str]]
    class_embeddings: list[list[float]]

    def __post_init__(self) -> None:
        enc = self.text_encoder
        if not isinstance(enc, dict) or any(k not in enc for k in _ENCODER_KEYS):
            raise ValueError(f"field 'language.text_encoder' needs {', '.join(_ENCODER_KEYS)}")
        try:
            cfg = AlignConfig(**self.heads)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"field 'language.heads' is not an align head config ({exc})"
            ) from None
        if cfg.text_dim != enc["dim"]:
            raise ValueError(
                f"field 'language.heads.text_dim' is {cfg.text_dim} but the text encoder's dim "
                f"is {enc['dim']}"
            )
        t = self.temperature
        if not (isinstance(t, (int, float)) and math.isfinite(t) and 0.01 <= t <= 1.0):
            raise ValueError(f"field 'language.temperature' must be in [0.01, 1], got {t!r}")
        emb = np.asarray(self.class_embeddings, dtype=np.float64)
        if emb.ndim != 2 or emb.shape != (len(self.class_prompts), cfg.text_dim):
            raise ValueError(
                f"field 'language.class_embeddings' must be {len(self.class_prompts)} x "
                f"{cfg.text_dim} (one per class), got shape {emb.shape}"
            )
        if not np.isfinite(emb).all():
            raise ValueError("field 'language.class_embeddings' holds non-finite values")

    @classmethod
    def from_dict(cls, doc: dict[str, Any], classes: list[str]) -> LanguageMeta:
        """The section of ``model.json``, checked against the model's ``classes``."""
        need = cls.__dataclass_fields__
        missing = [k for k in need if k not in doc]
        if missing:
            raise ValueError(
                f"field 'language' must be an aligned model's section ({', '.join(need)}); "
                f"{missing[0]!r} is missing"
            )
        meta = cls(**{k: doc[k] for k in need})
        if list(meta.class_prompts) != list(classes):
            raise ValueError(
                "field 'language.class_prompts' must name the model's classes in order"
            )
        return meta

    @property
    def align_config(self) -> AlignConfig:
        return AlignConfig(**self.heads)

    @property
    def embeddings(self) -> np.ndarray:
        """``(classes, dim)`` float32 unit vectors."""
        return np.asarray(self.class_embeddings, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
