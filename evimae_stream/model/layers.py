"""Transformer building blocks of EVI-MAE, with the published parameter names.

Two block kinds exist in the published model:

* :class:`Block` (CAV-MAE style, used by ``blocks_a``, ``blocks_u`` and the pretraining decoder):
  pre-norm attention + MLP, with three LayerNorm pairs chosen by a modality string
  (``"shared"`` → ``norm1/norm2``, ``"a"`` → ``norm1_a/norm2_a``, ``"v"`` → ``norm1_v/norm2_v``).
  The modality is a plain Python string so ``torch.export`` sees static control flow.
* :class:`VideoBlock` (VideoMAE-S, used by ``blocks_video``): ``qkv`` without bias plus separate
  ``q_bias``/``v_bias`` parameters; the effective qkv bias is ``cat(q_bias, 0, v_bias)``.

Attention is ``softmax(q·kᵀ·head_dim^-0.5)·v`` computed with ``F.scaled_dot_product_attention``
(the same math, fused). GELU is the exact erf form; LayerNorm eps is PyTorch's 1e-5. Patch and
head rearranges are written with einops (pure data movement: the same reshape and permute).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

#: modality strings a :class:`Block` accepts
BLOCK_MODALITIES: tuple[str, ...] = ("shared", "a", "v")


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """The classic Transformer position table, ``(1, n_position, dim)`` float32.

    angle(pos, j) = pos / 10000^(2·⌊j/2⌋/dim); sin on even j, cos on odd j (VideoMAE's
    ``get_sinusoid_encoding_table``), computed in float64 and rounded once, as published.
    """
    cpu = torch.device("cpu")  # real numbers even while a model is built on the meta device
    pos = torch.arange(n_position, dtype=torch.float64, device=cpu).unsqueeze(1)  # (N, 1)
    j = torch.arange(dim, dtype=torch.float64, device=cpu)
    denom = torch.pow(
        torch.tensor(10000.0, dtype=torch.float64, device=cpu),
        2 * torch.div(j, 2, rounding_mode="floor") / dim,
    )
    angle = pos / denom  # (N, dim)
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.to(torch.float32).unsqueeze(0)  # (1, N, dim)


class Mlp(nn.Module):
    """fc1 → GELU(erf) → fc2 (dropout is 0 in every published config, so none is applied)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _attend(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Multi-head attention from packed qkv ``(B, N, 3·C)`` → ``(B, N, C)``."""
    qkv = rearrange(qkv, "b n (three h d) -> three b h n d", three=3, h=num_heads)
    q, k, v = qkv.unbind(0)  # each (B, H, N, hd)
    x = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, hd), scale hd^-0.5
    return rearrange(x, "b h n d -> b n (h d)")  # (B, N, C)


class Attention(nn.Module):
    """timm-style attention: ``qkv`` Linear with bias, ``proj`` Linear."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(_attend(self.qkv(x), self.num_heads))  # (B, N, C)


class Block(nn.Module):
    """CAV-MAE transformer block with shared / IMU / video LayerNorm pairs."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        # registration order = published state-dict order
        self.norm1 = nn.LayerNorm(dim)
        self.norm1_a = nn.LayerNorm(dim)
        self.norm1_v = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.norm2_a = nn.LayerNorm(dim)
        self.norm2_v = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, modality: str = "shared") -> torch.Tensor:
        """``x`` (B, N, C) → (B, N, C); ``modality`` picks the LayerNorm pair."""
        if modality == "shared":
            n1, n2 = self.norm1, self.norm2
        elif modality == "a":
            n1, n2 = self.norm1_a, self.norm2_a
        elif modality == "v":
            n1, n2 = self.norm1_v, self.norm2_v
        else:
            raise ValueError(f"block modality must be one of {BLOCK_MODALITIES}, got {modality!r}")
        x = x + self.attn(n1(x))
        return x + self.mlp(n2(x))


class VideoAttention(nn.Module):
    """VideoMAE attention: bias-free ``qkv`` plus ``q_bias`` and ``v_bias`` (k has no bias)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))  # (3C,)
        qkv = F.linear(x, self.qkv.weight, bias)  # (B, N, 3C)
        return self.proj(_attend(qkv, self.num_heads))  # (B, N, C)


class VideoBlock(nn.Module):
    """VideoMAE-S block: pre-norm attention + MLP, no layer scale."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = VideoAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))  # (B, N, C)
        return x + self.mlp(self.norm2(x))


def _patch_linear(proj: nn.Conv2d | nn.Conv3d, patches: torch.Tensor) -> torch.Tensor:
    """The conv ``proj`` applied to non-overlapping patches ``(B, N, C·k…)`` as one matmul."""
    return F.linear(patches, proj.weight.reshape(proj.out_channels, -1), proj.bias)


class PatchEmbed(nn.Module):
    """IMU patches: Conv2d(3 → dim, k = s = patch), ``(B, 3, F, T)`` → ``(B, N, dim)``.

    A conv whose stride equals its kernel is a matmul over the patches: computed that way (the
    same sums; one GEMM instead of a strided convolution, ~5× faster on a CPU for these shapes).
    """

    def __init__(self, patch: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        hp, wp = x.shape[2] // p, x.shape[3] // p
        x = rearrange(
            x[:, :, : hp * p, : wp * p], "b c (hp p1) (wp p2) -> b (hp wp) (c p1 p2)", p1=p, p2=p
        )  # (B, N, C·p·p)
        return self.project(x)  # (B, F/p · T/p, dim), row-major over F

    def project(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches already cut, ``(B, N, C·p·p)`` in the conv weight's (c, row, col) order."""
        return _patch_linear(self.proj, patches)

    def project_transposed(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches cut from the transposed input, ``(B, N, C·p·p)`` in (c, col, row) order.

        The same sums as :meth:`project` on the transposed patches: the (small) weight is
        transposed instead of the (large) input, so a caller whose input is stored the other
        way round cuts contiguous rows of ``p`` values rather than gathering single ones.
        """
        w = self.proj.weight.transpose(2, 3).reshape(self.proj.out_channels, -1)  # (D, C·p·p)
        return F.linear(patches, w, self.proj.bias)


class PatchEmbedVideo(nn.Module):
    """Video tubelets: Conv3d(3 → dim, k = s = (tubelet, patch, patch)); → ``(B, N, dim)``.

    Computed as one matmul over the tubelets, like :class:`PatchEmbed`.
    """

    def __init__(self, patch: int, tubelet: int, in_chans: int, dim: int) -> None:
        super().__init__()
        self.patch, self.tubelet = patch, tubelet
        self.proj = nn.Conv3d(
            in_chans, dim, kernel_size=(tubelet, patch, patch), stride=(tubelet, patch, patch)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p, k = self.patch, self.tubelet
        tp, hp, wp = x.shape[2] // k, x.shape[3] // p, x.shape[4] // p
        x = rearrange(
            x[:, :, : tp * k, : hp * p, : wp * p],
            "b c (tp k) (hp p1) (wp p2) -> b (tp hp wp) (c k p1 p2)",
            k=k,
            p1=p,
            p2=p,
        )  # (B, N, C·k·p·p)
        return _patch_linear(self.proj, x)  # (B, T/t · H/p · W/p, dim)


def init_vit_weights(module: nn.Module) -> None:
    """Published initialisation: xavier-uniform Linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
