"""The EVI-MAE fine-tune (classification) model, key-for-key the published ``EVIMAEFT``."""

from __future__ import annotations

import torch
from torch import nn

from evimae_stream.model.config import EviMaeConfig
from evimae_stream.model.encoder import EviMaeEncoder
from evimae_stream.model.graph import GIN
from evimae_stream.types import MODES


class EviMae(EviMaeEncoder):
    """EVI-MAE classifier: ``model(imu, video, mode) -> logits (B, num_classes)``.

    Modes (a plain string, so ``torch.export`` sees static control flow):

    * ``"multimodal"``: IMU (160 tokens) + video (1568) → ``blocks_u`` with shared norms →
      ``norm`` → token mean → concat graph readout → ``mlp_head``.
    * ``"imu_only"``: IMU main path → ``blocks_u`` with IMU norms → ``norm_a`` → token mean →
      concat graph → head. ``video`` may be None and is never touched.
    * ``"video_only"``: video → ``blocks_u`` with video norms → ``norm_video`` → token mean → head.
      ``imu`` may be None and is never touched. With ``use_graph`` the head is
      ``video_embed_dim + graph_hidden`` wide; the published code cannot run video-only with the
      graph on (its head would be too narrow), so here a zero graph vector is concatenated: the
      head sees "no IMU evidence" and the rest of the model is exactly the published video path.

    IMU path: the n per-IMU token sequences (for the graph) and their average (the main path)
    go through ``blocks_a`` (always the shared norms) as one batch of (n+1)·B sequences — the
    same numbers as separate passes, one set of large matmuls instead of n+1 small ones.
    """

    def __init__(self, cfg: EviMaeConfig) -> None:
        if cfg.num_classes < 1:
            raise ValueError(f"the fine-tune model needs num_classes >= 1, got {cfg.num_classes}")
        super().__init__(cfg)
        width = cfg.head_dim
        self.mlp_head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, cfg.num_classes))
        # published order: ViT-style init of everything so far; the GIN keeps PyTorch's defaults
        self._init_encoder_weights()
        if cfg.use_graph:
            self.graph_encoder = GIN(
                cfg.imu_embed_dim,
                cfg.graph_hidden,
                cfg.graph_hidden,
                cfg.graph_layers,
                dropout=cfg.graph_dropout,
                encoding=True,
            )

    def imu_features(self, imu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """IMU main-path tokens ``(B, N_a, D_v)`` and graph readout ``(B, G)`` (None: no graph)."""
        tokens = self.embed_imu(imu)  # (nB, N_a, D_a)
        main = self.mean_over_imus(tokens)  # (B, N_a, D_a)
        if not self.cfg.use_graph:
            return self.pool_imu(self.run_blocks_a(main)), None
        nb = tokens.shape[0]
        out = self.run_blocks_a(torch.cat((tokens, main), dim=0))  # ((n+1)B, N_a, D_a)
        nodes = self.node_features(out[:nb])  # (B, n, D_a)
        graph = self.graph_encoder(nodes).mean(dim=1)  # (B, n, G) → (B, G)
        return self.pool_imu(out[nb:]), graph

    def video_features(self, video: torch.Tensor) -> torch.Tensor:
        """Video tokens after ``blocks_video``: ``(B, N_v, D_v)``."""
        return self.run_blocks_video(self.embed_video(video))

    def forward(
        self,
        imu: torch.Tensor | None,
        video: torch.Tensor | None,
        mode: str = "multimodal",
    ) -> torch.Tensor:
        """Logits ``(B, num_classes)``; see the class docstring for the modes."""
        return self.mlp_head(self.features(imu, video, mode))  # (B, num_classes)

    def features(
        self,
        imu: torch.Tensor | None,
        video: torch.Tensor | None,
        mode: str = "multimodal",
    ) -> torch.Tensor:
        """The pooled window feature ``(B, head_dim)`` the head classifies (and the language
        projections of :mod:`evimae_stream.model.align` read)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        graph = None
        if mode == "video_only":
            v = self.video_features(self.check_video(video))
            x = self.run_blocks_u(v, "v")  # (B, N_v, D_v)
        elif mode == "imu_only":
            a, graph = self.imu_features(self.check_imu(imu))
            x = self.run_blocks_u(a, "a")  # (B, N_a, D_v)
        else:
            imu = self.check_imu(imu)
            video = self.check_video(video)
            if imu.shape[0] != video.shape[0]:
                raise ValueError(
                    f"imu and video batch sizes differ: {imu.shape[0]} vs {video.shape[0]}"
                )
            a, graph = self.imu_features(imu)
            v = self.video_features(video)
            x = self.run_blocks_u(torch.cat((a, v), dim=1), "shared")  # (B, N_a + N_v, D_v)
        x = x.mean(dim=1)  # (B, D_v)
        if self.cfg.use_graph:
            if graph is None:
                graph = x.new_zeros(x.shape[0], self.cfg.graph_hidden)
            x = torch.cat((x, graph), dim=1)  # (B, D_v + G)
        return x
