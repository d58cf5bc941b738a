"""Loading the published EVI-MAE checkpoints (``nn.DataParallel`` pickles) strictly.

The released fine-tuned ``.pth`` files are state dicts whose keys all start with ``module.``.
Loading is strict: the only transformation is removing that prefix (and unwrapping a dict that
holds the state dict under a ``state_dict``/``model`` key). Any missing or unexpected key or any
shape mismatch is an :class:`ArtifactError` that names the file and the first bad keys — a
checkpoint that does not match is never half-loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evimae_stream.errors import ArtifactError
from evimae_stream.model.registry import create_model

log = logging.getLogger(__name__)

PREFIX = "module."
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
HEAD_KEY = "mlp_head.1.weight"


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
    except Exception as exc:  # torch raises many types for a bad file (pickle, zip, EOF...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtifactError(
            f"{path}: not a readable PyTorch checkpoint ({reason[:120]}); "
            "pass a .pth saved with torch.save"
        ) from None
    return checkpoint_filter_fn(_unwrap(obj, path))


def mismatch_report(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """One-line description of how ``state`` fails to fit ``model``, or None when it fits."""
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
    return "; ".join(parts) if parts else None


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
    problem = mismatch_report(model, state)
    if problem:
        raise ArtifactError(f"{path}: checkpoint does not match evimae_small: {problem}")
    model = model.to_empty(device="cpu")
    model.reset_fixed_buffers()
    model.load_state_dict(state, strict=True)
    model.eval()
    log.info("loaded %s (%d classes, graph %s)", path, num_classes, use_graph)
    return model
