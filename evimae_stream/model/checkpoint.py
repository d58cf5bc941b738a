"""Loading the published EVI-MAE checkpoints (``nn.DataParallel`` pickles) strictly.

The released fine-tuned ``.pth`` files are state dicts whose keys all start with ``module.``.
Loading is strict: the only transformation is removing that prefix (and unwrapping a dict that
holds the state dict under a ``state_dict``/``model`` key). Any missing or unexpected key or any
shape mismatch is an :class:`ArtifactError` that names the file and the first bad keys — a
checkpoint that does not match is never half-loaded. :func:`check_state_dict` is that check for
every state dict the project loads (artifacts too); :func:`load_official` adds the published
dataset's facts to a checkpoint, giving what an artifact holds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evimae_stream.datasets import PROFILES
from evimae_stream.errors import ArtifactError, InputError
from evimae_stream.model.registry import create_model

log = logging.getLogger(__name__)

PREFIX = "module."
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
HEAD_KEY = "mlp_head.1.weight"
#: seconds the published 16 video frames cover (every 4th frame at 30 fps)
PUBLISHED_VIDEO_SPAN_S = 16 * 4 / 30.0


def checkpoint_filter_fn(state_dict: dict[str, Any], model: nn.Module | None = None) -> dict:
    """timm-style filter: strip the ``module.`` prefix DataParallel put on every key.

    Nothing else is changed — no key renamed, dropped or reshaped — so strict loading afterwards
    still catches every mismatch. ``model`` is accepted for timm's signature and unused.
    """
    del model
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in state_dict.items()}


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner:
                obj = inner
                break
    if (
        not isinstance(obj, dict)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    ):
        raise ArtifactError(
            f"{path}: not a model state dict (expected a dict of named tensors); "
            "pass a published EVI-MAE fine-tuned .pth"
        )
    return obj


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a ``.pth`` safely (``weights_only``) and return its prefix-stripped state dict."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: checkpoint file not found; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a bad file (pickle, zip, EOF...)
        raise ArtifactError(
            f"{path}: not a loadable checkpoint: {what_file(path)}; expected a published "
            "EVI-MAE fine-tuned .pth (a state dict of tensors saved with torch.save)"
        ) from None
    return checkpoint_filter_fn(_unwrap(obj, path))


#: leading bytes of formats a user may pass by mistake, and what to call them
_MAGIC = (
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89HDF", "an HDF5 file (a Keras/TensorFlow model?)"),
    (b"GGUF", "a GGUF model file"),
    (b"\x1f\x8b", "a gzip file (unpack it first?)"),
    (b"\x7fELF", "a program (ELF binary)"),
)


def _zip_has(path: Path, name: str) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.endswith("/" + name) or n == name for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def what_file(path: Path) -> str:
    """What ``path`` looks like from its first bytes, for an error that says what was passed:
    empty, text (with its first line), a zip/HDF5/gzip/... file, or bytes
    that are none of those."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if not head:
        return "an empty file"
    if head.startswith(b"\x80") and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle holding more than tensors (which weights-only loading refuses)"
    if head.startswith(b"PK\x03\x04") and _zip_has(path, "data.pkl"):
        return "a torch.save file holding more than tensors (which weights-only loading refuses)"
    if head[4:8] == b"ftyp":
        return "an MP4/MOV video"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and (text.isprintable() or "\n" in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"a text file (starting {first!r})"
    return f"{len(head)}+ bytes of unknown binary data (starting {head[:8].hex(' ')})"


def check_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, target: str = "the model"
) -> None:
    """Raise one ArtifactError line naming ``source`` unless ``state`` fits ``model`` key for key
    and shape for shape (the first three missing, unexpected and mis-shaped keys are named)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s): {', '.join(missing[:3])}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:3])}")
    if wrong:
        shown = ", ".join(
            f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})" for k in wrong[:3]
        )
        parts.append(f"{len(wrong)} shape mismatch(es): {shown}")
    if parts:
        raise ArtifactError(f"{source}: weights do not match {target}: {'; '.join(parts)}")


def load_official_checkpoint(path: str | Path, num_classes: int | None = None) -> nn.Module:
    """Build ``evimae_small`` and load a published EVI-MAE fine-tuned checkpoint strictly.

    ``num_classes`` defaults to the rows of ``mlp_head.1.weight``; the graph branch is on when
    the file has ``graph_encoder.*`` keys (the published configs). Returns the model in eval mode.
    """
    path = Path(path)
    state = read_checkpoint(path)
    if num_classes is None:
        head = state.get(HEAD_KEY)
        if head is None or head.dim() != 2:
            raise ArtifactError(
                f"{path}: no {HEAD_KEY} to infer the number of classes from; "
                "not a fine-tuned EVI-MAE checkpoint, or pass num_classes"
            )
        num_classes = int(head.shape[0])
    use_graph = any(k.startswith("graph_encoder.") for k in state)
    # built on the meta device: shapes for the check at no cost, and no random init to discard
    with torch.device("meta"):
        model = create_model("evimae_small", num_classes, use_graph=use_graph)
    check_state_dict(model, state, str(path), "evimae_small")
    model = model.to_empty(device="cpu")
    model.reset_fixed_buffers()
    model.load_state_dict(state, strict=True)
    model.eval()
    log.info("loaded %s (%d classes, graph %s)", path, num_classes, use_graph)
    return model


def load_official(ckpt: Path, dataset: str, labels: Path | None):
    """A published checkpoint as ``(model, ModelMeta)``: strict load plus the dataset's facts
    (:data:`~evimae_stream.datasets.PROFILES`); class names from the release's label file
    ``labels``, or the dataset's own list."""
    from evimae_stream.artifact import ModelMeta
    from evimae_stream.sessions.release import read_class_labels

    profile = PROFILES[dataset]
    if labels is not None:
        classes, _ = read_class_labels(labels)
    elif profile.classes is not None:
        classes = list(profile.classes)
    else:
        raise InputError(
            f"--dataset {dataset}: class names come from the release's "
            "class_labels_indices.csv; pass it with --labels"
        )
    model = load_official_checkpoint(ckpt, num_classes=len(classes))
    cfg = model.cfg
    meta = ModelMeta(
        variant="evimae_small",
        model_config=cfg.to_dict(),
        classes=classes,
        imu_rate_hz=profile.imu_rate_hz,
        window_s=profile.window_s,
        norm_mean=profile.norm_mean,
        norm_std=profile.norm_std,
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        video_span_s=PUBLISHED_VIDEO_SPAN_S,
        training={
            "source": "official EVI-MAE release",
            "checkpoint": ckpt.name,
            "dataset": dataset,
        },
    )
    return model, meta
