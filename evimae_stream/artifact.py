"""Deployable model artifacts (DESIGN §7): a directory with ``model.safetensors`` + ``model.json``.

The JSON says everything the runtime needs to rebuild and feed the model without importing
``training``, and :class:`ModelMeta` is the one owner of the model's input contract: the
runtime's :class:`~evimae_stream.runtime.inputs.ModelSpec`, the
:class:`~evimae_stream.preprocess.PreprocessConfig` (:attr:`ModelMeta.preprocess`) and
the :class:`~evimae_stream.window.WindowGeometry` (:attr:`ModelMeta.geometry`) are derived
from it, never written down a second time. It holds
the registry variant and its full config, class names, IMU rate and window, video frame
count/size/span, spectrogram normalisation, supported modes, the data it was trained on and its
metrics. ``weights_sha256`` ties the two files together so a swapped or corrupt weight
file is caught before it produces wrong predictions. Every field of ``model.json`` is checked
for presence and JSON type when it is read: a broken file is one
:class:`~evimae_stream.errors.ArtifactError` line naming the file and the field, never a
traceback from deeper in the loader.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import stat
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from evimae_stream import __version__
from evimae_stream.errors import ArtifactError
from evimae_stream.preprocess import IMU_INPUTS, PreprocessConfig
from evimae_stream.types import ACC_AXES, MODES
from evimae_stream.window import WindowGeometry

log = logging.getLogger(__name__)

FORMAT = "evimae-stream-model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "model.json"


@dataclass
class ModelMeta:
    """The contents of ``model.json`` (minus bookkeeping fields added on save)."""

    variant: str
    model_config: dict[str, Any]
    classes: list[str]
    imu_rate_hz: float
    window_s: float
    norm_mean: float
    norm_std: float
    num_frames: int
    img_size: int
    video_span_s: float
    modes: list[str] = field(default_factory=lambda: list(MODES))
    imu_units: str = "g"
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: language-aligned models only (:class:`~evimae_stream.language.meta.LanguageMeta`)
    language: dict[str, Any] | None = None
    #: optional: the interval head (:class:`~evimae_stream.interval_head.IntervalMeta`)
    interval: dict[str, Any] | None = None
    #: optional: the IMU input representation (one of ``preprocess.IMU_INPUTS``); absent is the
    #: published ``spectrogram``
    imu_input: str | None = None
    #: optional: the channels of each IMU slot the model reads, in order; absent is the
    #: published acceleration ``["ax", "ay", "az"]``
    imu_channels: list[str] | None = None

    def __post_init__(self) -> None:
        if self.interval is not None:
            from evimae_stream.interval_head import IntervalMeta

            try:
                IntervalMeta(**self.interval)
            except TypeError as exc:
                raise ValueError(f"field 'interval': {exc}") from None
        if self.imu_input is not None and self.imu_input not in IMU_INPUTS:
            raise ValueError(f"field 'imu_input' must be one of {list(IMU_INPUTS)}")
        if self.imu_channels is not None and self.imu_channels[:3] != list(ACC_AXES):
            raise ValueError(f"field 'imu_channels' must start with {list(ACC_AXES)}")
        if not self.classes:
            raise ValueError("field 'classes' must not be empty")
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise ValueError(f"field 'classes' names {', '.join(map(repr, dupes))} twice")
        for name in ("imu_rate_hz", "window_s", "video_span_s", "norm_std"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"field {name!r} must be positive, got {value!r}")
        for name in ("num_frames", "img_size"):
            value = getattr(self, name)
            if not value >= 1:
                raise ValueError(f"field {name!r} must be at least 1, got {value!r}")
            inner = self.model_config.get(name, value)
            if inner != value:
                raise ValueError(
                    f"field {name!r} is {value!r} but model_config.{name} is {inner!r} "
                    "(the model would be fed inputs of the wrong shape)"
                )
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(
                f"field 'modes' must be a non-empty subset of {list(MODES)}, got {self.modes}"
            )
        if self.language is not None:
            from evimae_stream.language.meta import LanguageMeta

            LanguageMeta.from_dict(self.language, self.classes)

    @property
    def aligned(self) -> bool:
        """Whether the model is language-aligned (trained with the ``align`` objective)."""
        return self.language is not None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def window_samples(self) -> int:
        """IMU samples per window at the model's rate (the L of the preprocessing)."""
        return round(self.window_s * self.imu_rate_hz)

    @property
    def geometry(self) -> WindowGeometry:
        """The model's window: its length, IMU rate, and frame count over the video span."""
        return WindowGeometry(
            float(self.window_s), float(self.imu_rate_hz), int(self.num_frames),
            float(self.video_span_s),
        )  # fmt: skip

    @property
    def preprocess(self) -> PreprocessConfig:
        """The preprocessing this model's inputs need: normalisation, frame count and size from
        this file, the spectrogram shape from the model config, the published loader's
        resampling and STFT constants (DESIGN §6)."""
        return PreprocessConfig(
            norm_mean=float(self.norm_mean),
            norm_std=float(self.norm_std),
            num_frames=int(self.num_frames),
            img_size=int(self.img_size),
            spec_time=int(self.model_config.get("spec_time", PreprocessConfig.spec_time)),
            spec_freq=int(self.model_config.get("spec_freq", PreprocessConfig.spec_freq)),
            imu_input=self.imu_input or PreprocessConfig.imu_input,
        )


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) and x for x in v)


#: What each model.json field must be, checked before :class:`ModelMeta` is built, so a hand-
#: edited or foreign file fails with one line naming the field instead of a traceback later.
_META_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "variant": (lambda v: isinstance(v, str) and bool(v), "a non-empty string (a model variant)"),
    "model_config": (lambda v: isinstance(v, dict), "an object (the variant's config)"),
    "classes": (_strings, "a list of non-empty class-name strings"),
    "imu_rate_hz": (_number, "a finite number"),
    "window_s": (_number, "a finite number"),
    "norm_mean": (_number, "a finite number"),
    "norm_std": (_number, "a finite number"),
    "num_frames": (_integer, "an integer"),
    "img_size": (_integer, "an integer"),
    "video_span_s": (_number, "a finite number"),
    "modes": (_strings, f"a list of mode names ({', '.join(MODES)})"),
    "imu_units": (lambda v: isinstance(v, str), "a string"),
    "training": (lambda v: isinstance(v, dict), "an object"),
    "metrics": (lambda v: isinstance(v, dict), "an object"),
    "language": (lambda v: v is None or isinstance(v, dict), "an object (or absent)"),
    "interval": (lambda v: v is None or isinstance(v, dict), "an object (the interval head)"),
    "imu_input": (lambda v: isinstance(v, str), f"one of {', '.join(IMU_INPUTS)}"),
    "imu_channels": (_strings, "a list of channel names (ax, ay, az first)"),
}
_JSON_TYPES = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "an object",
}


def _describe(value: Any) -> str:
    """A short one-line description of a JSON value for error messages."""
    text = json.dumps(value, ensure_ascii=True)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = _JSON_TYPES.get(type(value), type(value).__name__)
    return kind if value is None else f"{kind} {text}"


def _check_meta_fields(meta_path: Path, doc: dict[str, Any]) -> None:
    """ArtifactError (one line naming the file and the field) for a missing required field or a
    field of the wrong JSON type."""
    required = {
        name
        for name, f in ModelMeta.__dataclass_fields__.items()
        if f.default is MISSING and f.default_factory is MISSING
    }
    for name, (ok, what) in _META_FIELDS.items():
        if name not in doc:
            if name in required:
                raise ArtifactError(f"{meta_path}: field {name!r} is missing; re-export the model")
            continue
        if not ok(doc[name]):
            raise ArtifactError(
                f"{meta_path}: field {name!r} must be {what}, got {_describe(doc[name])}; "
                "re-export the model or fix the field"
            )
    sha = doc.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and len(sha) == 64):
        raise ArtifactError(
            f"{meta_path}: field 'weights_sha256' must be a 64-digit hex string, got "
            f"{_describe(sha)}; re-export the model"
        )


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _meta_dict(meta: ModelMeta) -> dict[str, Any]:
    """``meta`` as JSON fields; ``language`` only for aligned models and ``interval`` only for
    models with an interval head (so the description, and :func:`model_hash`, of every other
    model is what it was before the fields existed)."""
    doc = asdict(meta)
    for optional in ("language", "interval", "imu_input", "imu_channels"):
        if doc[optional] is None:
            del doc[optional]
    return doc


def save_artifact(model: nn.Module, meta: ModelMeta, out_dir: str | Path) -> Path:
    """Write ``model`` and ``meta`` as an artifact directory; returns the directory."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    weights = out / WEIGHTS_FILE
    save_file(state, str(weights), metadata={"format": FORMAT})
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "software_version": __version__,
        **_meta_dict(meta),
        "weights_sha256": file_sha256(weights),
    }
    meta_path = out / META_FILE
    meta_path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    # safetensors creates its file owner-only (0600); both files get the mode a new file has
    # under the user's umask, as model.json got
    os.chmod(weights, stat.S_IMODE(meta_path.stat().st_mode))
    log.info("wrote model artifact %s (%s, %d classes)", out, meta.variant, meta.num_classes)
    return out


def read_meta(art_dir: str | Path) -> tuple[ModelMeta, dict[str, Any]]:
    """Read and validate ``model.json``; returns the typed meta and the raw document."""
    art = Path(art_dir)
    if not art.is_dir():
        raise ArtifactError(
            f"{art}: model directory does not exist; pass a directory made by "
            "training or `evimae-stream convert`"
        )
    meta_path = art / META_FILE
    if not meta_path.is_file():
        raise ArtifactError(
            f"{meta_path}: missing; a model directory needs {META_FILE} and {WEIGHTS_FILE}"
        )
    try:
        doc = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON ({exc}); re-export the model") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ArtifactError(
            f"{meta_path}: not an evimae-stream model description "
            f"(field 'format' must be {FORMAT!r})"
        )
    version = doc.get("format_version")
    if not _integer(version) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{meta_path}: format_version {version!r} is not supported by this "
            f"evimae-stream (reads up to {FORMAT_VERSION}); upgrade evimae-stream"
        )
    _check_meta_fields(meta_path, doc)
    fields = {k: doc[k] for k in ModelMeta.__dataclass_fields__ if k in doc}
    try:
        meta = ModelMeta(**fields)
    except ValueError as exc:
        raise ArtifactError(f"{meta_path}: {exc}; re-export the model or fix the field") from None
    return meta, doc


def load_artifact(art_dir: str | Path, map_location: str = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Rebuild the model of an artifact directory, load its weights strictly, eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from evimae_stream.model import create_model
    from evimae_stream.model.checkpoint import check_state_dict

    art = Path(art_dir)
    meta, doc = read_meta(art)
    weights = art / WEIGHTS_FILE
    if not weights.is_file():
        raise ArtifactError(f"{weights}: missing; the model directory is incomplete")
    expected = doc.get("weights_sha256")
    if expected and file_sha256(weights) != expected:
        raise ArtifactError(
            f"{weights}: checksum does not match {META_FILE} (corrupt or from "
            "another model); re-copy or re-export the model directory"
        )
    try:
        state = load_file(str(weights), device=map_location)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{weights}: unreadable safetensors file ({exc})") from None
    config = {k: v for k, v in meta.model_config.items() if k != "num_classes"}
    try:
        model = create_model(meta.variant, meta.num_classes, **config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(
            f"{art / META_FILE}: cannot build variant {meta.variant!r} with "
            f"its model_config ({exc})"
        ) from None
    if meta.language is not None:
        from evimae_stream.language.meta import LanguageMeta
        from evimae_stream.model.align import attach_heads

        attach_heads(model, LanguageMeta.from_dict(meta.language, meta.classes).align_config)
    check_state_dict(model, state, str(weights))
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, meta


def model_hash(art_dir: str | Path) -> str:
    """A stable identity of an artifact (weights + description), for compiled-engine caches."""
    meta, doc = read_meta(art_dir)
    ident = json.dumps(
        {"weights": doc.get("weights_sha256"), "meta": _meta_dict(meta)}, sort_keys=True
    )
    return hashlib.sha256(ident.encode()).hexdigest()[:16]
