"""Masked pretraining of the IMU branch alone: EVI-MAE's IMU reconstruction and body-graph terms
for recordings without a camera (ours; the published objective in :mod:`.pretrain` is not
changed).

A user's own recordings are often IMU-only, and they are few; the point of EVI-MAE's masked
pretraining is to learn from every recording, labelled or not, before fine-tuning. This model is
:class:`~evimae_stream.model.pretrain.EviMaePretrain` with the video path left out: the IMU
tokens are masked (``mask_ratio_imu``), encoded by ``blocks_a`` and the joint blocks with the
IMU-alone norm pair (``"a"``, the path the fine-tune model's ``imu_only`` mode runs), decoded by
the same decoder with mask tokens, and scored by the norm-pix MSE on the masked patches, plus
``graph_weight`` × the GraphMAE term. No contrastive term (it needs the video). Parameter names
are the published ones, so :func:`training.checkpoint.load_encoder_weights` fine-tunes from it.
"""

from __future__ import annotations

import torch

from evimae_stream.model.pretrain import EviMaePretrain, MaskNoise, random_masking


class ImuMaePretrain(EviMaePretrain):
    """``model(imu)`` → ``loss``, ``loss_imu``, ``loss_graph`` (see the module doc)."""

    def forward(  # type: ignore[override]
        self,
        imu: torch.Tensor,
        video: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: MaskNoise | None = None,
        motion: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses of one IMU batch ``(B, 12, T, F)``; ``video``/``motion`` must be None."""
        if video is not None or motion is not None:
            raise ValueError("ImuMaePretrain pretrains the IMU branch alone: pass no video")
        imu = self.check_imu(imu)
        pc = self.pcfg
        noise, tokens, loss_graph = self.embed_imu_and_graph_loss(imu, noise, generator)
        a, mask_a, ids_restore = random_masking(
            self.mean_over_imus(tokens), pc.mask_ratio_imu, noise.imu
        )  # (B, keep, D_a)
        a = self.pool_imu(self.run_blocks_a(a, self.blocks_a_modality))  # (B, keep, D_v)
        latent = self.run_blocks_u(a, "a")  # (B, keep, D_v)
        pred = self.decode_imu(latent, ids_restore)  # (B, N_a, p²·C)
        loss_imu = self.mae_loss(self.imu_target(imu), pred, mask_a)
        loss = loss_imu + pc.graph_weight * loss_graph
        return {"loss": loss, "loss_imu": loss_imu, "loss_graph": loss_graph}

    def decode_imu(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """IMU latent ``(B, keep, D_v)`` → predictions ``(B, N_a, p²·C)`` (the decoder of
        :meth:`EviMaePretrain.decode` on the IMU tokens alone)."""
        x = self.decoder_embed(latent)  # (B, keep, Dd)
        b, keep, dd = x.shape
        n = ids_restore.shape[1]
        x = torch.cat((x, self.mask_token.expand(b, n - keep, dd)), dim=1)
        x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(b, n, dd))  # (B, N_a, Dd)
        x = x + self.decoder_pos_embed_a + self.decoder_modality_a
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred_a(self.decoder_norm(x))
