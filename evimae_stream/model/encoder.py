"""The EVI-MAE encoder shared by the fine-tune and the pretraining model.

It owns the published encoder parameters (``patch_embed_a``, ``patch_embed_video``,
``modality_a``, ``modality_video``, ``blocks_a``, ``blocks_video``, ``blocks_u``, ``norm_a``,
``norm_video``, ``norm``) and the steps both models share: IMU and video tokenisation, the
per-IMU graph features, the averaged IMU main path. Subclasses add their heads and the
``graph_encoder`` (registered after the head, as in the published state-dict order).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from evimae_stream.model.config import EviMaeConfig
from evimae_stream.model.layers import (
    Block,
    PatchEmbed,
    PatchEmbedVideo,
    VideoBlock,
    init_vit_weights,
    sinusoid_table,
)


class EviMaeEncoder(nn.Module):
    """Tokenisers and transformer stacks of EVI-MAE (no head, no graph encoder)."""

    def __init__(self, cfg: EviMaeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        da, dv = cfg.imu_embed_dim, cfg.video_embed_dim
        self.patch_embed_a = PatchEmbed(cfg.patch, 3, da)
        self.patch_embed_video = PatchEmbedVideo(cfg.patch, cfg.tubelet, 3, dv)
        self.modality_a = nn.Parameter(torch.zeros(1, 1, da))
        self.modality_video = nn.Parameter(torch.zeros(1, 1, dv))
        # fixed tables: neither parameters nor saved buffers (absent from published checkpoints)
        self.register_buffer("pos_embed_a", sinusoid_table(cfg.imu_tokens, da), persistent=False)
        self.register_buffer(
            "pos_embed_video", sinusoid_table(cfg.video_tokens, dv), persistent=False
        )
        self.blocks_a = nn.ModuleList(
            [Block(da, cfg.imu_heads, cfg.mlp_ratio) for _ in range(cfg.imu_depth)]
        )
        self.blocks_video = nn.ModuleList(
            [VideoBlock(dv, cfg.video_heads, cfg.mlp_ratio) for _ in range(cfg.video_depth)]
        )
        self.blocks_u = nn.ModuleList(
            [Block(dv, cfg.video_heads, cfg.mlp_ratio) for _ in range(cfg.joint_depth)]
        )
        self.norm_a = nn.LayerNorm(dv)
        self.norm_video = nn.LayerNorm(dv)
        self.norm = nn.LayerNorm(dv)

    def reset_fixed_buffers(self) -> None:
        """Recompute the fixed position tables in place (after ``to_empty`` from meta)."""
        cfg = self.cfg
        for name, n, d in (
            ("pos_embed_a", cfg.imu_tokens, cfg.imu_embed_dim),
            ("pos_embed_video", cfg.video_tokens, cfg.video_embed_dim),
        ):
            buf = getattr(self, name)
            buf.copy_(sinusoid_table(n, d).to(buf.device, buf.dtype))

    def _init_encoder_weights(self) -> None:
        """Published initialisation (call after every submodule exists)."""
        for proj in (self.patch_embed_a.proj, self.patch_embed_video.proj):
            w = proj.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.modality_a, std=0.02)
        nn.init.normal_(self.modality_video, std=0.02)
        self.apply(init_vit_weights)

    # ---- tokenisation -------------------------------------------------------------------------

    def check_imu(self, imu: torch.Tensor | None) -> torch.Tensor:
        """Raise a ValueError unless ``imu`` is ``(B, imu_channels, spec_time, spec_freq)``."""
        cfg = self.cfg
        want = (cfg.imu_channels, cfg.spec_time, cfg.spec_freq)
        if imu is None:
            raise ValueError("this mode needs the IMU input, got None")
        if imu.dim() != 4 or tuple(imu.shape[1:]) != want:
            raise ValueError(
                f"imu must be (B, {', '.join(map(str, want))}), got {tuple(imu.shape)}"
            )
        return imu

    def check_video(self, video: torch.Tensor | None) -> torch.Tensor:
        """Raise a ValueError unless ``video`` is ``(B, 3, num_frames, img_size, img_size)``."""
        cfg = self.cfg
        want = (3, cfg.num_frames, cfg.img_size, cfg.img_size)
        if video is None:
            raise ValueError("this mode needs the video input, got None")
        if video.dim() != 5 or tuple(video.shape[1:]) != want:
            raise ValueError(
                f"video must be (B, {', '.join(map(str, want))}), got {tuple(video.shape)}"
            )
        return video

    def embed_imu(self, imu: torch.Tensor) -> torch.Tensor:
        """``(B, 3·n, T, F)`` → per-IMU tokens ``(n·B, N_a, D_a)``, IMU-major (IMU i = rows iB…).

        Channels 3i…3i+2 are IMU i; each group, transposed to (freq, time), goes through the
        shared Conv2d (all n groups as one batch); then + position table, + ``modality_a``.
        Tokens are row-major over (freq, time) patches, as that transposed conv input gives.
        The patches are cut straight from ``imu`` in one copy (cast to the weight's dtype on the
        way), each in its stored (c, t, f) order — runs of ``p`` contiguous frequencies — and the
        conv weight is transposed to match (:meth:`PatchEmbed.project_transposed`).
        """
        n, p = self.cfg.num_imus, self.cfg.patch
        tp, fp = imu.shape[2] // p, imu.shape[3] // p
        x = rearrange(
            imu[:, :, : tp * p, : fp * p],
            "b (n c) (tp pt) (fp pf) -> n b fp tp c pt pf",
            n=n,
            pt=p,
            pf=p,
        )  # (n, B, F', T', 3, p_t, p_f), a view
        dtype = self.patch_embed_a.proj.weight.dtype
        # one gather, with the cast when there is one (``to`` with an unchanged dtype is a no-op)
        x = (
            x.contiguous()
            if x.dtype == dtype
            else x.to(dtype, memory_format=torch.contiguous_format)
        )
        x = rearrange(x, "n b fp tp c pt pf -> (n b) (fp tp) (c pt pf)")  # (nB, N_a, 3·p·p)
        x = self.patch_embed_a.project_transposed(x)  # (nB, N_a, D_a)
        x = x + self.pos_embed_a
        return x + self.modality_a

    def embed_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → ``(B, N_v, D_v)`` (+ position table, + ``modality_video``)."""
        v = self.patch_embed_video(video)  # (B, N_v, D_v)
        v = v + self.pos_embed_video
        return v + self.modality_video

    def mean_over_imus(self, tokens: torch.Tensor) -> torch.Tensor:
        """Average the n per-IMU sequences: ``(n·B, N, D)`` → ``(B, N, D)``."""
        return rearrange(tokens, "(n b) t d -> n b t d", n=self.cfg.num_imus).mean(dim=0)

    def node_features(self, seqs: torch.Tensor) -> torch.Tensor:
        """Per-IMU encoded sequences ``(n·B, N, D)`` → graph node features ``(B, n, D)``."""
        nodes = seqs.mean(dim=1)  # (nB, D)
        return rearrange(nodes, "(n b) d -> b n d", n=self.cfg.num_imus)

    def run_blocks_a(self, x: torch.Tensor, modality: str = "shared") -> torch.Tensor:
        """``blocks_a`` over ``(S, N, D_a)``; sequences are independent, so any batch works."""
        for blk in self.blocks_a:
            x = blk(x, modality)
        return x

    @staticmethod
    def pool_imu(x: torch.Tensor) -> torch.Tensor:
        """Average adjacent feature pairs, ``(B, N, 2d)`` → ``(B, N, d)`` (no weights)."""
        return F.avg_pool1d(x, kernel_size=2, stride=2)

    def run_blocks_video(self, v: torch.Tensor) -> torch.Tensor:
        """``blocks_video`` over ``(B, N_v, D_v)``."""
        for blk in self.blocks_video:
            v = blk(v)
        return v

    def run_blocks_u(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """``blocks_u`` with the modality's norm pair, then the matching final LayerNorm."""
        for blk in self.blocks_u:
            x = blk(x, modality)
        if modality == "shared":
            return self.norm(x)
        if modality == "a":
            return self.norm_a(x)
        return self.norm_video(x)
