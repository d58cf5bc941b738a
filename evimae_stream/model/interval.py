"""The interval model: TIM (Chalk et al., CVPR 2024) over the recogniser's window features.

A context of ``N`` windows becomes ``2N`` feature tokens (one IMU and one video embedding per
window) and ``Q`` query tokens, each asking about a time interval ``[start, end]`` given
relative to the context (0 = its start, 1 = its end). As in TIM:

- the interval encoder is an MLP of (start, end) → ``d`` (three Linear+ReLU, then LayerNorm);
- a feature token is ``[embed(feature) ; interval(window)] + modality`` (width ``2d``), where
  ``embed`` is Dropout → Linear → GELU → LayerNorm and ``modality`` a learned ``(1, 1, 2d)``
  vector per modality (IMU, video, and one for the queries);
- a query token is ``[learned query vector ; interval(query)] + query modality``;
- a transformer encoder runs over all tokens; a query attends to the feature tokens and to
  itself only (never to other queries), so a query's answer does not depend on which other
  queries were asked;
- a classification head (sigmoid per class, bias initialised to the 0.01 prior) says what
  happens in the query's interval, and a regression head (MLP, sigmoid) gives the distances
  from the query's centre to the refined start and end;
- a window head (ours, not TIM's: a linear classifier over the encoder's outputs at each
  window's feature tokens, averaged over the modalities present) says which class each window
  shows, in context; :func:`evimae_stream.intervals.refine` snaps a detection's boundaries to
  where that per-window evidence changes, which the query pyramid and the regression alone
  place only to about a second.

Either modality may be missing: its tokens are masked out (``present``), so IMU-only or
video-only windows still give an answer from what is there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

#: the modalities whose window features are context tokens, in token order
MODALITIES: tuple[str, ...] = ("imu", "video")


@dataclass(frozen=True)
class IntervalConfig:
    """The interval model's shape. ``feat_dim``: width of one window feature (the recogniser's
    pre-head vector); ``dim``: ``d`` (tokens are ``2d`` wide); ``num_classes``: the actions."""

    feat_dim: int
    num_classes: int
    dim: int = 64
    heads: int = 4
    layers: int = 2
    mlp_ratio: float = 4.0
    feat_drop: float = 0.1
    seq_drop: float = 0.1
    attn_drop: float = 0.1

    def __post_init__(self) -> None:
        for name in ("feat_dim", "num_classes", "dim", "heads", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"interval config {name} must be a whole number >= 1, got {value}")
        if (2 * self.dim) % self.heads:
            raise ValueError(f"interval config: 2*dim ({2 * self.dim}) must divide by heads")
        for name in ("feat_drop", "seq_drop", "attn_drop"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"interval config {name} must be in [0, 1)")
        if not self.mlp_ratio > 0:
            raise ValueError("interval config mlp_ratio must be > 0")

    def to_dict(self) -> dict:
        return asdict(self)


class IntervalEncoder(nn.Module):
    """(start, end) relative to the context ``(..., 2)`` → ``(..., d)``: TIM's time MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(),
            nn.Linear(dim, dim), nn.ReLU(), nn.LayerNorm(dim),
        )  # fmt: skip

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        return self.mlp(times)


class IntervalModel(nn.Module):
    """``model(feats, present, times, queries) -> (logits (B, Q, K), offsets (B, Q, 2),
    window_logits (B, N, K))``.

    ``feats``: ``(B, N, M, F)`` window features of the ``M`` modalities (:data:`MODALITIES`),
    ``present``: ``(B, N, M)`` bool, ``times``: ``(B, N, 2)`` each window's interval and
    ``queries``: ``(B, Q, 2)``, both relative to the context. ``offsets``: distances from each
    query's centre to its refined start and end, in context units (``[0, 1]``);
    ``window_logits``: each window's class logits (zero where no modality is present).
    """

    def __init__(self, cfg: IntervalConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, width = cfg.dim, 2 * cfg.dim
        self.intervals = IntervalEncoder(d)
        self.embed = nn.ModuleList(
            nn.Sequential(
                nn.Dropout(cfg.feat_drop), nn.Linear(cfg.feat_dim, d), nn.GELU(), nn.LayerNorm(d)
            )
            for _ in MODALITIES
        )  # fmt: skip
        self.modality = nn.Parameter(torch.zeros(len(MODALITIES) + 1, width))  # last: queries
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.modality, std=0.01)
        nn.init.normal_(self.query, std=0.01)
        self.drop = nn.Dropout(cfg.seq_drop)
        layer = nn.TransformerEncoderLayer(
            width, cfg.heads, int(width * cfg.mlp_ratio), cfg.attn_drop, activation="gelu",
            batch_first=True,
        )  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.cls_head = nn.Linear(width, cfg.num_classes)
        nn.init.constant_(self.cls_head.bias, -math.log((1 - 0.01) / 0.01))
        self.window_head = nn.Linear(width, cfg.num_classes)
        self.reg_head = nn.Sequential(
            nn.Linear(width, d), nn.ReLU(), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2),
            nn.Sigmoid(),
        )  # fmt: skip

    def tokens(
        self, feats: torch.Tensor, times: torch.Tensor, queries: torch.Tensor
    ) -> torch.Tensor:
        """The input sequence ``(B, N·M + Q, 2d)``: feature tokens by modality, then queries."""
        b, _, m, _ = feats.shape
        t = self.intervals(times)  # (B, N, d)
        seq = [
            torch.cat((self.embed[k](feats[:, :, k]), t), dim=-1) + self.modality[k]  # (B, N, 2d)
            for k in range(m)
        ]
        q = self.query.expand(b, queries.shape[1], -1)  # (B, Q, d)
        seq.append(torch.cat((q, self.intervals(queries)), dim=-1) + self.modality[-1])
        return self.drop(torch.cat(seq, dim=1))

    def forward(
        self, feats: torch.Tensor, present: torch.Tensor, times: torch.Tensor,
        queries: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        """See the class doc."""
        b, n, m, f = feats.shape
        if m != len(MODALITIES) or f != self.cfg.feat_dim:
            raise ValueError(
                f"features {tuple(feats.shape)}: need (B, N, {len(MODALITIES)}, "
                f"{self.cfg.feat_dim})"
            )
        nq = queries.shape[1]
        x = self.tokens(torch.nan_to_num(feats), times, queries)  # (B, S, 2d), S = N·M + Q
        s = x.shape[1]
        # queries see the features and themselves only (TIM); True = may not attend
        attn = torch.zeros(s, s, dtype=torch.bool, device=x.device)
        attn[:, n * m :] = True
        # missing modality: its tokens are keys nobody attends to
        absent = ~present.permute(0, 2, 1).reshape(b, n * m)  # (B, N·M) modality-major
        pad = torch.cat((absent, absent.new_zeros(b, nq)), dim=1)  # (B, S)
        mask = attn.unsqueeze(0) | pad.unsqueeze(1)  # (B, S, S)
        mask = mask & ~torch.eye(s, dtype=torch.bool, device=x.device)  # a token sees itself
        mask = mask.repeat_interleave(self.cfg.heads, dim=0)
        x = self.encoder(x, mask=mask)  # (B, S, 2d)
        out = x[:, n * m :]  # (B, Q, 2d)
        return self.cls_head(out), self.reg_head(out), self.windows(x[:, : n * m], present)

    def windows(self, feat_out: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Window logits ``(B, N, K)`` from the encoder's feature-token outputs ``(B, N·M, 2d)``
        (modality-major), averaged over the modalities present."""
        b, n, m = present.shape
        per = self.window_head(feat_out).reshape(b, m, n, -1)  # (B, M, N, K)
        w = present.permute(0, 2, 1).unsqueeze(-1).to(per.dtype)  # (B, M, N, 1)
        return (per * w).sum(1) / w.sum(1).clamp(min=1.0)
