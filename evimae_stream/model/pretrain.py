"""The EVI-MAE pretraining model (CAV-MAE structure + GraphMAE on the body graph).

Encoder parameters carry the fine-tune model's names, so a pretraining checkpoint fine-tunes by
loading its encoder keys. Per batch ``(imu, video)``:

1. IMU tokens (per IMU) → graph path: every IMU's full sequence through ``blocks_a`` → mean →
   node features; a random half of the batch's nodes (at least one) is replaced by
   ``graph_enc_mask_token``; GIN encoder → ``graph_encoder_to_decoder`` → masked rows zeroed →
   one-layer GIN ``graph_decoder`` → reconstructed node features; loss = mean(1 − cos) against
   the masked nodes' own encoder features — not detached, as published, so the gradient also
   flows through the target into ``blocks_a``.
2. IMU main path: the n sequences averaged, 75 % of the tokens masked (so every IMU loses the
   same positions), ``blocks_a`` → 2d → d pooling. Video: 90 % of the tokens masked,
   ``blocks_video``.
3. ``blocks_u`` three times: joint (shared norms) on cat(imu, video) → ``norm`` (the decoder's
   input); IMU-only (``a`` norms) → ``norm_a``; video-only (``v`` norms) → ``norm_video``.
4. Decoder: ``decoder_embed``, mask tokens put back in place, fixed position tables +
   ``decoder_modality_*``, ``decoder_blocks``, ``decoder_norm``, ``decoder_pred_a`` (each IMU patch
   position rebuilds all 12 channels) and ``decoder_pred_video``.
5. Loss = MSE on masked IMU patches + MSE on masked video patches (targets normalised per patch)
   + 0.01 × InfoNCE (temperature 0.05) of the mean-pooled IMU-only / video-only features, one
   direction as published + 10 × graph loss.
6. ``PretrainConfig.video_target`` (default ``pixels``, the published objective above) may ask
   for MME's motion trajectories instead of or besides the pixels: a ``decoder_pred_motion``
   head then predicts every video token's point displacements (targets from
   :mod:`training.motion_targets`, handed in as ``motion``), weighted by ``motion_weight``;
   ``motion`` alone has no ``decoder_pred_video``.

The masks come from :class:`MaskNoise`, drawn in the published order (graph permutation, IMU
noise, video noise) from ``generator`` or handed in whole, so a test, a resumed run or the parity
harness (``bench/pretrain_parity.py``, which checks every loss term and parameter gradient
against the published code) can fix every mask.

``blocks_a`` runs with the shared norm pair, as in the published code (CAV-MAE's modality-specific
stacks call their blocks without a modality), so the fine-tune model — which always uses the
shared pair there — starts from trained norms; ``blocks_a_modality="a"`` is available for
experiments. Two departures from the published objective are options, off by default:
``PretrainConfig.contrast_bidirectional`` (InfoNCE averaged over both directions) and
``graph_detach_target``. The graph decoder is GraphMAE's one-layer decoding GIN
(a bare Linear→BN→PReLU→Linear apply function, no outer norm/activation), as published, so its
keys are ``graph_decoder.layers.0.apply_func.{linears,norms,activations}``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from evimae_stream.model.config import EviMaeConfig, PretrainConfig
from evimae_stream.model.encoder import EviMaeEncoder
from evimae_stream.model.graph import GIN
from evimae_stream.model.layers import BLOCK_MODALITIES, Block, sinusoid_table


@dataclass(frozen=True)
class MaskNoise:
    """The random draws behind one batch's masks (what the published code draws per batch).

    ``graph``: a permutation of the batch's ``B·n`` node rows (row ``b·n + i`` is IMU ``i`` of
    sample ``b``); its first ``int(mask_ratio_graph·B·n)`` rows are masked (None without the
    graph). ``imu`` ``(B, N_a)`` and ``video`` ``(B, N_v)``: uniform noise per token; the tokens
    with the smallest noise are kept.
    """

    graph: torch.Tensor | None
    imu: torch.Tensor
    video: torch.Tensor


def random_masking(
    x: torch.Tensor, ratio: float, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample random token masking (MAE): keep the ``int(N·(1 − ratio))`` tokens of smallest
    ``noise`` ``(B, N)``.

    ``x`` (B, N, D) → kept tokens ``(B, N_keep, D)``, mask ``(B, N)`` (1 = removed) and
    ``ids_restore`` ``(B, N)`` that puts [kept, removed] back into the original order.
    """
    b, n, d = x.shape
    keep = int(n * (1 - ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(b, keep, d))  # (B, N_keep, D)
    mask = torch.ones(b, n, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (B, N)
    return kept, mask, ids_restore


def cosine_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """GraphMAE's scaled cosine error at the published ``alpha`` 1: mean over rows of
    ``1 − cos(x_i, y_i)``, ``(M, D)`` × ``(M, D)`` → ()."""
    x = F.normalize(x, p=2, dim=-1)
    y = F.normalize(y, p=2, dim=-1)
    return (1 - (x * y).sum(dim=-1)).mean()


class EviMaePretrain(EviMaeEncoder):
    """EVI-MAE pretraining model: ``model(imu, video, generator=None, noise=None)`` → losses.

    The dict holds ``loss`` (the weighted total to back-propagate) and the unweighted parts
    ``loss_imu``, ``loss_video``, ``loss_contrastive``, ``loss_graph`` (0 without the graph).
    ``generator`` seeds every mask; ``noise`` (a :class:`MaskNoise`) fixes them outright.
    """

    def __init__(
        self, cfg: EviMaeConfig, pcfg: PretrainConfig, blocks_a_modality: str = "shared"
    ) -> None:
        super().__init__(cfg)
        if blocks_a_modality not in BLOCK_MODALITIES:
            raise ValueError(
                f"blocks_a_modality must be one of {BLOCK_MODALITIES}, got {blocks_a_modality!r}"
            )
        self.pcfg = pcfg
        self.blocks_a_modality = blocks_a_modality
        dd = pcfg.decoder_embed_dim
        self.decoder_embed = nn.Linear(cfg.video_embed_dim, dd)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_modality_a = nn.Parameter(torch.zeros(1, 1, dd))
        self.decoder_modality_video = nn.Parameter(torch.zeros(1, 1, dd))
        self.register_buffer(
            "decoder_pos_embed_a", sinusoid_table(cfg.imu_tokens, dd), persistent=False
        )
        self.register_buffer(
            "decoder_pos_embed_video", sinusoid_table(cfg.video_tokens, dd), persistent=False
        )
        self.decoder_blocks = nn.ModuleList(
            [Block(dd, pcfg.decoder_heads, cfg.mlp_ratio) for _ in range(pcfg.decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(dd)
        self.decoder_pred_a = nn.Linear(dd, cfg.patch**2 * cfg.imu_channels)
        if pcfg.wants_pixels:
            self.decoder_pred_video = nn.Linear(dd, cfg.tubelet * cfg.patch**2 * 3)
        if pcfg.wants_motion:
            self.decoder_pred_motion = nn.Linear(dd, pcfg.motion_dim)
        self._init_encoder_weights()
        for p in (self.decoder_modality_a, self.decoder_modality_video, self.mask_token):
            nn.init.normal_(p, std=0.02)
        if cfg.use_graph:
            g = cfg.graph_hidden
            self.graph_enc_mask_token = nn.Parameter(torch.zeros(1, cfg.imu_embed_dim))
            self.graph_encoder = GIN(
                cfg.imu_embed_dim, g, g, cfg.graph_layers, dropout=cfg.graph_dropout
            )
            self.graph_decoder = GIN(
                g, g, cfg.imu_embed_dim, 1, dropout=cfg.graph_dropout, encoding=False
            )
            self.graph_encoder_to_decoder = nn.Linear(g, g, bias=False)

    def reset_fixed_buffers(self) -> None:
        """Recompute every fixed position table, the decoder's included."""
        super().reset_fixed_buffers()
        dd = self.pcfg.decoder_embed_dim
        for name, n in (
            ("decoder_pos_embed_a", self.cfg.imu_tokens),
            ("decoder_pos_embed_video", self.cfg.video_tokens),
        ):
            buf = getattr(self, name)
            buf.copy_(sinusoid_table(n, dd).to(buf.device, buf.dtype))

    # ---- targets ------------------------------------------------------------------------------

    def imu_target(self, imu: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, F)`` → per-patch targets ``(B, N_a, p·p·C)``, ordered (freq, time, channel)
        within a patch and row-major over frequency across patches (published ``patchify``)."""
        b, c, t, f = imu.shape
        p = self.cfg.patch
        x = imu.transpose(2, 3).reshape(b, c, f // p, p, t // p, p)  # (B, C, h, p, w, q)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(b, (f // p) * (t // p), p * p * c)

    def video_target(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, 3, T, H, W)`` → ``(B, N_v, tubelet·p·p·3)``: b c (t p0)(h p1)(w p2) →
        b (t h w)(p0 p1 p2 c)."""
        b, c, t, h, w = video.shape
        tt, p = self.cfg.tubelet, self.cfg.patch
        x = video.reshape(b, c, t // tt, tt, h // p, p, w // p, p)
        x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, t, h, w, p0, p1, p2, C)
        return x.reshape(b, (t // tt) * (h // p) * (w // p), tt * p * p * c)

    def mae_loss(
        self, target: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean over the masked patches (``mask`` 1) of the per-patch MSE ``(B, N, P)`` → ();
        with ``norm_pix_loss`` each target patch is first standardised by its own mean and
        unbiased variance (+1e-6), as published."""
        if self.pcfg.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)  # (B, N) per-patch MSE
        return (loss * mask).sum() / mask.sum()

    # ---- parts --------------------------------------------------------------------------------

    def draw_noise(
        self,
        batch: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> MaskNoise:
        """One batch's mask draws, in the published order: graph permutation, IMU, video."""
        cfg = self.cfg
        graph = None
        if cfg.use_graph:
            graph = torch.randperm(batch * cfg.num_imus, generator=generator, device=device)
        imu = torch.rand(batch, cfg.imu_tokens, generator=generator, device=device)
        video = torch.rand(batch, cfg.video_tokens, generator=generator, device=device)
        return MaskNoise(graph, imu, video)

    def graph_loss(
        self, tokens: torch.Tensor, perm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """GraphMAE on the body graph; ``perm`` (B·n,) picks the masked node rows (its first
        ``int(mask_ratio_graph·B·n)``, at least one). Returns (loss, node mask ``(B·n,)`` bool).

        The target is the masked nodes' encoder features, not detached unless
        ``graph_detach_target``: as published, the term also trains ``blocks_a`` through it.
        """
        seqs = self.run_blocks_a(tokens, self.blocks_a_modality)  # (nB, N_a, D_a)
        nodes = self.node_features(seqs)  # (B, n, D_a)
        b, n, d = nodes.shape
        rows = b * n
        num_mask = max(1, int(self.pcfg.mask_ratio_graph * rows))
        node_mask = torch.zeros(rows, dtype=torch.bool, device=nodes.device)
        node_mask[perm[:num_mask]] = True
        flat = nodes.reshape(rows, d)
        masked_in = torch.where(node_mask.unsqueeze(1), self.graph_enc_mask_token, flat)
        enc = self.graph_encoder(masked_in.reshape(b, n, d))  # (B, n, G)
        rep = self.graph_encoder_to_decoder(enc)
        rep = rep.masked_fill(node_mask.reshape(b, n, 1), 0.0)  # re-mask before decoding
        recon = self.graph_decoder(rep).reshape(rows, d)  # (B·n, D_a)
        target = flat[node_mask]  # (M, D_a)
        if self.pcfg.graph_detach_target:
            target = target.detach()
        return cosine_loss(recon[node_mask], target), node_mask

    def contrastive_loss(self, ca: torch.Tensor, cv: torch.Tensor) -> torch.Tensor:
        """InfoNCE between L2-normalised IMU and video features ``(B, D)``, as published:
        ``−mean_i log_softmax(a·vᵀ / T, dim=0)[i, i]`` — each video picks its IMU among the
        batch's. ``contrast_bidirectional`` averages it with the other direction (dim=1)."""
        a = F.normalize(ca, dim=-1)
        v = F.normalize(cv, dim=-1)
        logits = a @ v.t() / self.pcfg.contrast_temperature  # (B, B): IMU rows, video columns
        loss = -logits.log_softmax(dim=0).diagonal().mean()
        if self.pcfg.contrast_bidirectional:
            loss = (loss - logits.log_softmax(dim=1).diagonal().mean()) / 2
        return loss

    def decode(
        self,
        latent: torch.Tensor,
        ids_restore_a: torch.Tensor,
        ids_restore_v: torch.Tensor,
        keep_a: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint latent ``(B, keep_a + keep_v, D_v)`` → IMU predictions ``(B, N_a, p²·C)`` and
        the decoder's video features ``(B, N_v, Dd)`` (the video heads read them)."""
        x = self.decoder_embed(latent)  # (B, K, Dd)
        b, _, dd = x.shape
        n_a, n_v = ids_restore_a.shape[1], ids_restore_v.shape[1]
        xa, xv = x[:, :keep_a], x[:, keep_a:]
        a_ = torch.cat((xa, self.mask_token.expand(b, n_a - xa.shape[1], dd)), dim=1)
        a_ = torch.gather(a_, 1, ids_restore_a.unsqueeze(-1).expand(b, n_a, dd))  # (B, N_a, Dd)
        v_ = torch.cat((xv, self.mask_token.expand(b, n_v - xv.shape[1], dd)), dim=1)
        v_ = torch.gather(v_, 1, ids_restore_v.unsqueeze(-1).expand(b, n_v, dd))  # (B, N_v, Dd)
        a_ = a_ + self.decoder_pos_embed_a + self.decoder_modality_a
        v_ = v_ + self.decoder_pos_embed_video + self.decoder_modality_video
        x = torch.cat((a_, v_), dim=1)
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        return self.decoder_pred_a(x[:, :n_a]), x[:, n_a:]

    def motion_loss(
        self, target: torch.Tensor, pred: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """MME's trajectory loss: MSE over the masked tokens that have a target.

        ``target`` ``(B, N_v, steps·grid²·2)`` in pixels, ordered (step, point, xy), NaN rows
        for tokens without a track (:mod:`training.motion_targets`); ``motion_norm`` "patch_std"
        standardises each (step, xy) over the token's points (unbiased, +1e-6, MME's PatchStd),
        "patch" divides by the patch size. Returns () (0 when no masked token has a target).
        """
        pc = self.pcfg
        valid = ~torch.isnan(target).any(dim=-1)  # (B, N_v)
        target = torch.nan_to_num(target)
        if pc.motion_norm == "patch_std":
            b, n, _ = target.shape
            t = target.reshape(b, n, pc.motion_steps, pc.motion_grid**2, 2)
            t = (t - t.mean(dim=3, keepdim=True)) / (t.var(dim=3, keepdim=True) + 1.0e-6) ** 0.5
            target = t.reshape(b, n, -1)
        else:
            target = target / self.cfg.patch
        w = mask * valid.to(mask.dtype)
        loss = ((pred - target) ** 2).mean(dim=-1)  # (B, N_v)
        return (loss * w).sum() / w.sum().clamp_min(1.0)

    def video_losses(
        self, feats: torch.Tensor, video: torch.Tensor, motion: torch.Tensor | None,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """(pixel loss, motion loss) of the decoder's video features ``(B, N_v, Dd)``; a term
        the ``video_target`` does not ask for is 0."""
        zero = feats.new_zeros(())
        loss_pix = loss_mot = zero
        if self.pcfg.wants_pixels:
            loss_pix = self.mae_loss(self.video_target(video), self.decoder_pred_video(feats), mask)
        if self.pcfg.wants_motion:
            if motion is None:
                raise ValueError("video_target asks for motion: pass the motion targets")
            loss_mot = self.motion_loss(motion, self.decoder_pred_motion(feats), mask)
        return loss_pix, loss_mot

    def embed_imu_and_graph_loss(
        self, imu: torch.Tensor, noise: MaskNoise | None, generator: torch.Generator | None
    ) -> tuple[MaskNoise, torch.Tensor, torch.Tensor]:
        """The batch's mask noise (drawn unless given), its IMU tokens ``(nB, N_a, D_a)`` and
        the body-graph loss (zero without the graph) — the first steps of every objective that
        pretrains the IMU branch."""
        if noise is None:
            noise = self.draw_noise(imu.shape[0], imu.device, generator)
        tokens = self.embed_imu(imu)  # (nB, N_a, D_a)
        if self.cfg.use_graph:
            loss_graph, _ = self.graph_loss(tokens, noise.graph)
        else:
            loss_graph = tokens.new_zeros(())
        return noise, tokens, loss_graph

    def forward(
        self,
        imu: torch.Tensor,
        video: torch.Tensor,
        generator: torch.Generator | None = None,
        noise: MaskNoise | None = None,
        motion: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses for one batch; see the module docstring. ``motion`` ``(B, N_v, D_m)``: the
        trajectory targets, needed when ``video_target`` includes motion."""
        imu = self.check_imu(imu)
        video = self.check_video(video)
        pc = self.pcfg
        noise, tokens, loss_graph = self.embed_imu_and_graph_loss(imu, noise, generator)

        a, mask_a, ids_restore_a = random_masking(
            self.mean_over_imus(tokens), pc.mask_ratio_imu, noise.imu
        )
        v, mask_v, ids_restore_v = random_masking(
            self.embed_video(video), pc.mask_ratio_video, noise.video
        )
        a = self.pool_imu(self.run_blocks_a(a, self.blocks_a_modality))  # (B, keep_a, D_v)
        v = self.run_blocks_video(v)  # (B, keep_v, D_v)

        latent = self.run_blocks_u(torch.cat((a, v), dim=1), "shared")
        ca = self.run_blocks_u(a, "a").mean(dim=1)  # (B, D_v)
        cv = self.run_blocks_u(v, "v").mean(dim=1)

        pred_a, feats_v = self.decode(latent, ids_restore_a, ids_restore_v, a.shape[1])
        loss_imu = self.mae_loss(self.imu_target(imu), pred_a, mask_a)
        loss_video, loss_motion = self.video_losses(feats_v, video, motion, mask_v)
        loss_c = self.contrastive_loss(ca, cv)
        loss = loss_imu + loss_video + pc.contrast_weight * loss_c + pc.graph_weight * loss_graph
        out = {
            "loss": loss,
            "loss_imu": loss_imu,
            "loss_video": loss_video,
            "loss_contrastive": loss_c,
            "loss_graph": loss_graph,
        }
        if pc.wants_motion:
            out["loss"] = loss + pc.motion_weight * loss_motion
            out["loss_motion"] = loss_motion
        return out
