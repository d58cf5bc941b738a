"""Masked pretraining of the time-domain IMU variant (``imu_patch_*``, ours; issue 18).

MAE on :class:`~evimae_stream.model.patch_imu.PatchImuNet`'s own tokens, so a user's recordings
teach the encoder before fine-tuning, labelled or not: of the N time-patch tokens a fraction
``mask_ratio_imu`` is removed (the posture token always stays: it is the window's mean, not a
patch), the encoder's blocks run on the posture token and the kept patches, and a light decoder
(``decoder_embed_dim`` × ``decoder_depth`` blocks, mask tokens with the sinusoid table) rebuilds
every patch's raw values (all slots and channels, the window mean removed, each patch
standardised by its own mean and variance: ``norm_pix_loss``); the loss is the MSE on the masked
patches only. The encoder's parameter names are the fine-tune model's (``posture``,
``patch_embed``, ``blocks``, ``norm``), so :func:`training.checkpoint.load_encoder_weights`
starts the fine-tuning from them; the decoder is dropped there. The published EVI-MAE objective
(:mod:`.pretrain`, :mod:`.imu_pretrain`) is not touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from evimae_stream.model.layers import Block, sinusoid_table
from evimae_stream.model.patch_imu import PatchImuConfig, PatchImuNet
from evimae_stream.model.pretrain import MaskNoise, random_masking


@dataclass(frozen=True)
class PatchPretrainConfig:
    """The masking and decoder of :class:`PatchImuPretrain` (field names as
    :class:`~evimae_stream.model.config.PretrainConfig`'s, so ``model.overrides`` reach them)."""

    mask_ratio_imu: float = 0.75
    decoder_embed_dim: int = 64
    decoder_depth: int = 1
    decoder_heads: int = 2
    norm_pix_loss: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio_imu < 1.0:
            raise ValueError(f"mask_ratio_imu must be in (0, 1), got {self.mask_ratio_imu}")
        if self.decoder_depth < 1 or self.decoder_embed_dim < 1:
            raise ValueError("decoder_depth and decoder_embed_dim must be at least 1")
        if self.decoder_embed_dim % self.decoder_heads:
            raise ValueError(
                f"decoder_embed_dim {self.decoder_embed_dim} must divide by decoder_heads "
                f"{self.decoder_heads}"
            )


class PatchImuPretrain(PatchImuNet):
    """``model(imu)`` → ``loss`` (= ``loss_imu``, see the module doc); ``imu`` (B, S·C, L).
    The fine-tune model's encoder and tokenizer (:meth:`PatchImuNet.tokens`) without its head."""

    def __init__(self, cfg: PatchImuConfig, pcfg: PatchPretrainConfig) -> None:
        super().__init__(PatchImuConfig(**{**cfg.to_dict(), "num_classes": 1}))
        del self.mlp_head  # no classes here: the fine-tuning builds its own head
        self.pcfg = pcfg
        d, dd = cfg.embed_dim, pcfg.decoder_embed_dim
        self.decoder_embed = nn.Linear(d, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_blocks = nn.ModuleList(
            Block(dd, pcfg.decoder_heads, cfg.mlp_ratio) for _ in range(pcfg.decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(dd)
        self.decoder_pred = nn.Linear(dd, cfg.imu_channels * cfg.patch)
        nn.init.normal_(self.mask_token, std=0.02)

    def target(self, imu: torch.Tensor) -> torch.Tensor:
        """(B, S·C, L) → (B, N, S·C·P): each time patch's values as the tokenizer cuts them."""
        b, sc, length = imu.shape
        p = self.cfg.patch
        x = imu * self.channel_scale
        x = x - x.mean(dim=2, keepdim=True)
        pad = (-length) % p
        x = nn.functional.pad(x, (0, pad), mode="replicate") if pad else x
        n = x.shape[2] // p
        return x.reshape(b, sc, n, p).transpose(1, 2).reshape(b, n, sc * p)

    def forward(  # type: ignore[override]
        self,
        imu: torch.Tensor,
        video: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: MaskNoise | None = None,
        motion: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        if video is not None or motion is not None:
            raise ValueError("PatchImuPretrain pretrains on the IMU alone: pass no video")
        tokens = self.tokens(imu)  # (B, 1 + N, D)
        posture, patches = tokens[:, :1], tokens[:, 1:]
        b, n, _ = patches.shape
        if noise is not None:
            rand = noise.imu
        else:
            rand = torch.rand(b, n, generator=generator, device=imu.device)
        kept, mask, ids_restore = random_masking(patches, self.pcfg.mask_ratio_imu, rand)
        x = torch.cat([posture, kept], dim=1)  # (B, 1 + keep, D)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))  # (B, 1 + keep, Dd)
        keep, dd = kept.shape[1], x.shape[2]
        y = torch.cat([x[:, 1:], self.mask_token.expand(b, n - keep, dd)], dim=1)
        y = torch.gather(y, 1, ids_restore.unsqueeze(-1).expand(b, n, dd))  # (B, N, Dd)
        y = torch.cat([x[:, :1], y + sinusoid_table(n, dd).to(y)], dim=1)  # (B, 1 + N, Dd)
        for blk in self.decoder_blocks:
            y = blk(y)
        pred = self.decoder_pred(self.decoder_norm(y[:, 1:]))  # (B, N, S·C·P)
        loss = masked_mse(self.target(imu), pred, mask, self.pcfg.norm_pix_loss)
        return {"loss": loss, "loss_imu": loss}


def masked_mse(
    target: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor, norm_pix: bool
) -> torch.Tensor:
    """Mean over the masked patches (``mask`` 1) of the per-patch MSE; with ``norm_pix`` each
    target patch is standardised by its own mean and unbiased variance (+1e-6), as MAE."""
    if norm_pix:
        target = (target - target.mean(-1, keepdim=True)) / (
            target.var(-1, keepdim=True) + 1.0e-6
        ) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)  # (B, N)
    return (loss * mask).sum() / mask.sum()
