"""The published side of the pretraining parity harness (run by ``bench/pretrain_parity.py``).

Runs in the published code's own environment (torch 2.2.1, dgl 2.1.0, timm 0.4.5; see
``pretrain_parity.py`` for the venv) with the published source on ``sys.path``; it imports
nothing of ours. From the exchange folder it reads ``setup.json``, ``state.safetensors`` (the
state dict both models load) and ``batch.safetensors`` (inputs, mask noise, dropout masks),
builds the published ``EVIMAE`` with the WEAR pretraining configuration
(``egs/release/pretrain_wear.sh``), runs one training-mode forward and backward with every
random draw forced to the given ones, and writes ``official.safetensors``: the loss terms,
the masks it used and every parameter's gradient (``grad.<name>``).

:func:`forced_draws` is the forcing, shared by both sides: during the forward it replaces
``torch.rand`` (token-masking noise), ``torch.randperm`` (graph node mask) and
``torch.nn.functional.dropout`` with p > 0 (GraphMAE's feature dropout) by queues of given
tensors, from the outside — the published files are not edited. A draw that finds its queue
empty, a given tensor of the wrong size or one left unused is an error: nothing random goes
unforced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

#: egs/release/pretrain_wear.sh, as published
WEAR_VIDEO = {
    "img_size": 224,
    "patch_size": 16,
    "encoder_embed_dim": 384,
    "encoder_depth": 12,
    "encoder_num_heads": 6,
    "mlp_ratio": 4,
    "qkv_bias": True,
    "encoder_num_classes": 0,
    "decode_num_classes": 1536,
    "decode_embed_dim": 192,
    "decode_num_heads": 3,
    "masking_ratio": 0.9,
    "pretrain_modality": "both",
}
WEAR_IMU = {
    "target_length": 320,
    "masking_ratio": 0.75,
    "mask_mode": "unstructured",
    "plot_type": "stft",
    "plot_height": 128,
    "patch_size": 16,
    "channel_num": 12,
    "encoder_embed_dim": 768,
    "encoder_depth": 11,
    "encoder_num_heads": 12,
    "enable_graph": True,
    "imu_graph_net": "gin",
    "imu_graph_masking_ratio": 0.5,
}
WEAR_LOSS = {"norm_pix_loss": True, "mae_loss_weight": 1.0, "contrast_loss_weight": 0.01}


def _take(queue: list[torch.Tensor], what: str, shape: tuple[int, ...]) -> torch.Tensor:
    if not queue:
        raise RuntimeError(f"unforced random draw: {what} {shape} (no given tensor left)")
    t = queue.pop(0)
    if tuple(t.shape) != tuple(shape) and t.numel() != torch.Size(shape).numel():
        raise RuntimeError(f"forced {what}: given {tuple(t.shape)}, the code asks {shape}")
    return t.reshape(shape)


@contextlib.contextmanager
def forced_draws(
    rand: list[torch.Tensor], randperm: list[torch.Tensor], dropout: list[torch.Tensor]
) -> Iterator[None]:
    """Within the block, ``torch.rand``/``torch.randperm`` return the next given tensor and
    ``F.dropout`` with p > 0 in training multiplies by the next given keep mask / (1 − p)."""
    real_rand, real_randperm, real_dropout = torch.rand, torch.randperm, F.dropout

    def fake_rand(*size, **kw):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        t = _take(rand, "torch.rand", tuple(shape))
        return t.to(device=kw.get("device"), dtype=kw.get("dtype") or torch.float32)

    def fake_randperm(n, **kw):
        return _take(randperm, "torch.randperm", (int(n),)).to(kw.get("device"))

    def fake_dropout(x, p=0.5, training=True, inplace=False):
        if p == 0 or not training:
            return real_dropout(x, p, training, inplace)
        keep = _take(dropout, f"dropout(p={p})", tuple(x.shape)).to(x.device, x.dtype)
        return x * keep / (1 - p)

    torch.rand, torch.randperm, F.dropout = fake_rand, fake_randperm, fake_dropout
    try:
        yield
    finally:
        torch.rand, torch.randperm, F.dropout = real_rand, real_randperm, real_dropout
    left = {"rand": len(rand), "randperm": len(randperm), "dropout": len(dropout)}
    if any(left.values()):
        raise RuntimeError(f"given draws not used (the code drew fewer than expected): {left}")


def dropout_masks(batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The batch file's dropout keep masks, in call order (``dropout.0``, ``dropout.1``, ...)."""
    keys = sorted((k for k in batch if k.startswith("dropout.")), key=lambda k: int(k[8:]))
    return [batch[k] for k in keys]


def build_official(src: Path, bidirectional: bool) -> torch.nn.Module:
    """The published ``EVIMAE`` with the WEAR pretraining configuration."""
    sys.path.insert(0, str(src))
    import models  # the published package (src/models), not ours

    model = models.EVIMAE(
        norm_pix_loss=WEAR_LOSS["norm_pix_loss"],
        tr_pos=False,
        video_model_dict=dict(WEAR_VIDEO),
        imu_model_dict=dict(WEAR_IMU),
    )
    if bidirectional:  # the published flag, not reachable from its forward's arguments
        plain = model.forward_contrastive
        model.forward_contrastive = lambda a, v: plain(a, v, bidirect_contrast=True)
    return model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, required=True, help="the published repo's src/ folder")
    ap.add_argument("--work", type=Path, required=True, help="the exchange folder")
    args = ap.parse_args(argv)
    setup = json.loads((args.work / "setup.json").read_text())
    torch.set_num_threads(setup["threads"])
    dtype = getattr(torch, setup["dtype"])
    model = build_official(args.src, setup["contrast_bidirectional"])
    state = load_file(str(args.work / "state.safetensors"))
    model.load_state_dict(state, strict=True)
    model.to(dtype).train()
    batch = load_file(str(args.work / "batch.safetensors"))
    imu, video = batch["imu"].to(dtype), batch["video"].to(dtype)
    with forced_draws(
        [batch["noise.imu"], batch["noise.video"]], [batch["noise.graph"]], dropout_masks(batch)
    ):
        loss, _, loss_a, loss_v, loss_c, mask_a, mask_v, _, loss_g = model(
            imu,
            video,
            None,  # the loader's tube mask: unused by the published forward (it masks per token)
            mae_loss_weight=WEAR_LOSS["mae_loss_weight"],
            contrast_loss_weight=WEAR_LOSS["contrast_loss_weight"],
            mask_mode=WEAR_IMU["mask_mode"],
        )
    loss.backward()
    out = {
        "loss.total": loss.detach(),
        "loss.imu": loss_a.detach(),
        "loss.video": loss_v.detach(),
        "loss.contrastive_weighted": loss_c.detach(),
        "loss.graph": loss_g.detach(),
        "mask.imu": mask_a.float(),
        "mask.video": mask_v.float(),
    }
    for name, p in model.named_parameters():
        out[f"grad.{name}"] = p.grad if p.grad is not None else torch.zeros_like(p)
        out[f"hasgrad.{name}"] = torch.tensor(p.grad is not None)
    save_file({k: v.contiguous() for k, v in out.items()}, str(args.work / "official.safetensors"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
