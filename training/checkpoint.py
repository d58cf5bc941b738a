"""Resumable training checkpoints and loading encoder weights from earlier runs.

A checkpoint (``<run_dir>/checkpoints/last.pt``, written atomically at the end of an epoch)
holds the model, optimizer, LR scheduler and grad scaler states, the epoch/step counters, the
best validation score so far, and the RNG states (python, numpy, torch, CUDA). Augmentation and
data order are derived from (seed, epoch), so restoring these is enough for a resumed CPU run to
reproduce the uninterrupted one bit for bit.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evimae_stream.errors import ArtifactError

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"
PRETRAIN_ENCODER = "pretrain_encoder.pt"


def rng_state() -> dict[str, Any]:
    """Every global RNG state a training step can touch."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state` output."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path) -> dict[str, Any]:
    """Read a training checkpoint (our own files: full unpickling of RNG states is needed)."""
    if not path.is_file():
        raise ArtifactError(f"{path}: checkpoint not found; pass --resume auto or a .pt path")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise ArtifactError(
            f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})"
        ) from None


def resolve_resume(resume: str | None, run_dir: Path) -> Path | None:
    """``--resume``: None, ``auto`` (``last.pt`` of the run if there is one) or a path."""
    if resume is None:
        return None
    if resume == "auto":
        p = run_dir / "checkpoints" / LAST
        return p if p.is_file() else None
    p = Path(resume)
    if not p.is_file():
        raise ArtifactError(f"{p}: --resume checkpoint not found")
    return p


@dataclass
class TrainState:
    """The loop's counters and history: where a resumed run continues."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)
    best_loss: float | None = None


def save_last(path: Path, state: TrainState, objects: dict[str, Any], config: dict) -> None:
    """``last.pt``: the state dicts of ``objects`` (model, optimizer, scheduler, scaler), the
    loop's state, every RNG state and the config."""
    ckpt = {name: obj.state_dict() for name, obj in objects.items()}
    ckpt.update(
        epoch=state.epoch, step=state.step, best=state.best, best_epoch=state.best_epoch,
        history=state.history, best_loss=state.best_loss, rng=rng_state(), config=config,
    )  # fmt: skip
    atomic_save(ckpt, path)


def restore(path: Path, objects: dict[str, Any]) -> TrainState:
    """Load a :func:`save_last` checkpoint into ``objects`` and the global RNGs."""
    ckpt = load(path)
    for name, obj in objects.items():
        obj.load_state_dict(ckpt[name])
    set_rng_state(ckpt["rng"])
    return TrainState(
        ckpt["epoch"], ckpt["step"], ckpt["best"], ckpt["best_epoch"], ckpt["history"],
        ckpt.get("best_loss"),
    )  # fmt: skip


def load_encoder_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> str:
    """Copy every tensor of ``state`` whose key and shape match ``model`` (encoder keys of a
    pretraining or published checkpoint into a fine-tune model); returns a one-line report.
    Nothing at all matching is an :class:`ArtifactError`."""
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    shape_mismatch = sorted(k for k in state if k in own and k not in take)
    if not take:
        raise ArtifactError(
            f"{source}: no tensor matches the model (wrong variant? check model.variant and "
            "model.overrides)"
        )
    model.load_state_dict(take, strict=False)
    not_loaded = sorted(set(own) - set(take))
    heads = [k for k in not_loaded if k.startswith("mlp_head")]
    report = (
        f"{source}: loaded {len(take)}/{len(own)} tensors; {len(not_loaded)} left at init "
        f"({len(heads)} head, e.g. {', '.join(not_loaded[:3]) or '-'}); "
        f"{len(set(state) - set(own))} checkpoint tensors unused (decoder etc.)"
    )
    if shape_mismatch:
        report += f"; {len(shape_mismatch)} shape mismatches (e.g. {shape_mismatch[0]})"
    return report
