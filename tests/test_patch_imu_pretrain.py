"""Masked time-patch pretraining of the ``imu_patch_*`` variants (issue 18): it learns to rebuild
the masked patches, the fine-tuning starts from its encoder, and one ``train.py`` recipe chains
both on every session of the user's folder, labelled or not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from evimae_stream.model import create_imu_pretrain_model, create_model
from evimae_stream.model.patch_imu_pretrain import masked_mse
from evimae_stream.sessions import ImuSpec, SessionWriter
from tests.helpers.paths import REPO
from tests.test_patch_imu import RATE, motion, write_session
from training import checkpoint as ckpt
from training.config import load_config
from training.train import run

TINY = {"embed_dim": 16, "heads": 1, "depth": 1}


def test_loss_falls_on_a_tiny_batch_and_scores_only_masked_patches() -> None:
    torch.manual_seed(0)
    model = create_imu_pretrain_model("imu_patch_tiny", **TINY, decoder_embed_dim=16,
                                      decoder_heads=1)  # fmt: skip
    t = torch.arange(250) / RATE
    x = torch.stack([torch.sin(2 * torch.pi * f * t + p) for f, p in
                     [(0.5, 0.0), (1.0, 1.0), (1.5, 2.0), (0.7, 0.5)] * 3])  # fmt: skip
    x = (x.unsqueeze(0) * torch.tensor([0.3, 0.6]).view(2, 1, 1)).contiguous()  # (2, 12, 250)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        return model(x, generator=torch.Generator().manual_seed(1))["loss"]

    first = float(loss().detach())
    for _ in range(60):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert float(loss().detach()) < 0.6 * first
    # MSE on the masked patches only: a wrong prediction on a visible patch costs nothing
    target, pred = torch.randn(1, 4, 6), torch.zeros(1, 4, 6)
    mask = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    base = masked_mse(target, pred, mask, norm_pix=True)
    pred[0, 1] += 5.0
    assert torch.isclose(masked_mse(target, pred, mask, norm_pix=True), base)
    with pytest.raises(ValueError, match="mask_ratio_imu"):
        create_imu_pretrain_model("imu_patch_tiny", mask_ratio_imu=1.0)


def unlabelled_session(path: Path, seconds: float) -> None:
    with SessionWriter(
        path, imu={"right_arm": ImuSpec(RATE, ("ax", "ay", "az"))}, t0_ns=10**9, wall_start="fixed"
    ) as w:
        acc = motion("reach", seconds, 9).astype(np.float32)
        t = 10**9 + np.round(np.arange(len(acc)) / RATE * 1e9).astype(np.int64)
        w.add_imu_block("right_arm", t, acc)


def test_one_recipe_pretrains_on_every_session_then_fine_tunes_from_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for k in range(2):
        for label in ("raise", "reach"):
            write_session(data / f"{label}{k}", [(label, motion(label, 12.0, k))])
    unlabelled_session(data / "unlabelled", 30.0)
    cfg = load_config(
        REPO / "configs" / "train" / "small_real.yaml",
        [
            f"run_dir={tmp_path / 'run'}", f"data.sessions={data}",
            "model.overrides={embed_dim: 16, heads: 1, depth: 1}",
            "pretrain.epochs=2", "pretrain.batch_size=8", "train.epochs=1",
            "train.min_windows_per_epoch=0", "train.max_steps_per_epoch=2",
            "train.num_threads=1", "train.batch_size=8", "train.lr=1e-9",
        ],
    )  # fmt: skip
    out = run(cfg)
    enc_path = tmp_path / "run" / "pretrain" / ckpt.PRETRAIN_ENCODER
    assert out["pretrain"]["pretrain_checkpoint"] == str(enc_path)
    pre = ckpt.load(enc_path)
    # labelled or not: 4 labelled training sessions cut ~20 windows, the unlabelled one 26 more
    assert pre["windows"]["train"] > 40
    assert any(k.startswith("decoder_") for k in pre["model"])
    config = (tmp_path / "run" / "config.json").read_text()
    assert '"init": "pretrain"' in config and str(enc_path) in config
    # at a vanishing learning rate the fine-tuned encoder is still the pretrained one
    tuned = load_file(str(Path(out["artifact"]) / "model.safetensors"))
    for key in ("patch_embed.weight", "posture.weight", "blocks.0.attn.qkv.weight"):
        assert torch.allclose(tuned[key], pre["model"][key], atol=1e-6), key
    scratch = create_model("imu_patch_tiny", 2, **TINY)
    report = ckpt.load_encoder_weights(scratch, pre["model"], "pretrain")
    assert "4 left at init (4 head" in report
