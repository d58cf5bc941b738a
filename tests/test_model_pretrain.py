"""The pretraining model (on evimae_tiny, and the published decoder keys on evimae_small).

The objective is the published one term by term; ``bench/pretrain_parity.py`` checked every
loss and parameter gradient against the published code, and the tests marked "parity" pin
what it found on hand-checkable cases: the single-directional InfoNCE, the norm-pix MSE on
masked patches only, the graph term's 1 − cosine and its target that is not detached.
"""

from __future__ import annotations

import math

import pytest
import torch

from evimae_stream.model import create_model, create_pretrain_model
from evimae_stream.model.pretrain import MaskNoise, cosine_loss, random_masking


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: the shared test machine is oversubscribed (see test_model_behaviour)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pre() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_pretrain_model("evimae_tiny")


def _batch(model, b: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    imu = torch.randn(b, 12, cfg.spec_time, cfg.spec_freq, generator=g)
    video = torch.randn(b, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g)
    return imu, video


def test_losses_finite_and_gradients_reach_encoder_and_decoder(pre) -> None:
    pre.train()
    pre.zero_grad()
    out = pre(*_batch(pre), generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "loss_imu", "loss_video", "loss_contrastive", "loss_graph"}
    for k, v in out.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    pc = pre.pcfg
    total = (
        out["loss_imu"]
        + out["loss_video"]
        + pc.contrast_weight * out["loss_contrastive"]
        + pc.graph_weight * out["loss_graph"]
    )
    torch.testing.assert_close(out["loss"], total)
    out["loss"].backward()
    for name in (
        "patch_embed_a.proj.weight",
        "patch_embed_video.proj.weight",
        "blocks_a.0.norm1.weight",  # blocks_a runs with the shared norms, as published
        "blocks_video.0.attn.q_bias",
        "blocks_u.0.norm1.weight",
        "blocks_u.0.norm1_a.weight",
        "blocks_u.0.norm1_v.weight",
        "graph_encoder.layers.0.apply_func.mlp.linears.0.weight",
        "graph_enc_mask_token",
        "graph_encoder_to_decoder.weight",
        "graph_decoder.layers.0.apply_func.linears.1.weight",
        "decoder_embed.weight",
        "mask_token",
        "decoder_blocks.0.attn.qkv.weight",
        "decoder_pred_a.weight",
        "decoder_pred_video.weight",
    ):
        grad = dict(pre.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


#: DESIGN §6, as published: masking ratios and loss weights of EVI-MAE pretraining. Written out
#: as literals so that changing a constant in the code fails here.
PUBLISHED_PRETRAIN = {
    "mask_ratio_imu": 0.75,
    "mask_ratio_video": 0.9,
    "mask_ratio_graph": 0.5,
    "contrast_weight": 0.01,
    "contrast_temperature": 0.05,
    "graph_weight": 10.0,
    "norm_pix_loss": True,
    "contrast_bidirectional": False,  # published bidirect_contrast=False
    "graph_detach_target": False,  # published: the graph target keeps its gradient
    "decoder_embed_dim": 192,
    "decoder_depth": 8,
    "decoder_heads": 3,
}


@pytest.mark.parametrize("variant", ["evimae_small", "evimae_tiny"])
def test_pretrain_config_has_the_published_ratios_and_weights(variant) -> None:
    with torch.device("meta"):
        model = create_pretrain_model(variant)
    got = model.pcfg.to_dict()
    want = dict(PUBLISHED_PRETRAIN)
    if variant == "evimae_tiny":  # same recipe, a smaller decoder for 2-core CPUs
        for k in ("decoder_embed_dim", "decoder_depth", "decoder_heads"):
            want.pop(k)
    assert {k: got[k] for k in want} == want


def test_total_loss_is_the_published_weighted_sum(pre) -> None:
    """loss = MSE_imu + MSE_video + 0.01 · InfoNCE + 10 · graph, with the published literals."""
    pre.eval()
    with torch.no_grad():
        out = pre(*_batch(pre, seed=5), generator=torch.Generator().manual_seed(3))
    assert out["loss_graph"] > 0 and out["loss_contrastive"] > 0
    total = (
        out["loss_imu"]
        + out["loss_video"]
        + 0.01 * out["loss_contrastive"]
        + 10.0 * out["loss_graph"]
    )
    torch.testing.assert_close(out["loss"], total, rtol=1e-6, atol=0)


#: a 2 x 2 case by hand: IMU features (1,0), (0,2) (unit: (1,0), (0,1)); video features (3,0),
#: (1,1) (unit: (1,0), (1,1)/sqrt2); logits = a.v^T / 0.05 = [[20, 20/sqrt2], [0, 20/sqrt2]]
HAND_CA = [[1.0, 0.0], [0.0, 2.0]]
HAND_CV = [[3.0, 0.0], [1.0, 1.0]]
S = 20 / math.sqrt(2)
#: published (softmax over IMUs, dim 0): column 0 [20, 0] -> -log(1 + e^-20), column 1 [S, S]
#: -> log 2
HAND_PUBLISHED = (math.log1p(math.exp(-20)) + math.log(2)) / 2
#: the other direction (dim 1): row 0 [20, S] -> log(1 + e^(S-20)); row 1 [0, S] -> log(1 + e^-S)
HAND_OTHER = (math.log1p(math.exp(S - 20)) + math.log1p(math.exp(-S))) / 2


def test_parity_contrastive_loss_is_the_published_single_direction() -> None:
    """-mean(diag(log_softmax(a.v^T / 0.05, dim=0))) by hand; the option averages both ways."""
    ca, cv = torch.tensor(HAND_CA, dtype=torch.float64), torch.tensor(HAND_CV, dtype=torch.float64)
    published = create_pretrain_model("evimae_tiny").double()
    got = published.contrastive_loss(ca, cv).item()
    assert got == pytest.approx(HAND_PUBLISHED, rel=1e-12)  # 0.3466, not the symmetric 0.1740
    both = create_pretrain_model("evimae_tiny", contrast_bidirectional=True).double()
    got = both.contrastive_loss(ca, cv).item()
    assert got == pytest.approx((HAND_PUBLISHED + HAND_OTHER) / 2, rel=1e-12)


def test_parity_mae_loss_is_norm_pix_mse_on_masked_patches_only() -> None:
    """Two 4-value patches, only patch 1 masked. Its target [0, 0, 0, 2] has mean 0.5 and
    unbiased variance 1, so it normalises to [-0.5, -0.5, -0.5, 1.5] / sqrt(1 + 1e-6); against a
    zero prediction the MSE is (3·0.25 + 2.25) / 4 / (1 + 1e-6). Patch 0 is ignored however
    wrong its prediction is."""
    target = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 2.0]]], dtype=torch.float64)
    pred = torch.tensor([[[9.0, -9.0, 9.0, -9.0], [0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
    mask = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    model = create_pretrain_model("evimae_tiny")
    assert model.mae_loss(target, pred, mask).item() == pytest.approx(0.75 / (1 + 1e-6), rel=1e-12)
    raw = create_pretrain_model("evimae_tiny", norm_pix_loss=False)
    assert raw.mae_loss(target, pred, mask).item() == pytest.approx(1.0, rel=1e-12)  # 2² / 4


def test_parity_graph_criterion_is_mean_one_minus_cosine() -> None:
    """Rows (1,0)·(0,2): cos 0 -> 1; (1,1)·(3,3): cos 1 -> 0; (1,0)·(-2,0): cos -1 -> 2."""
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 2.0], [3.0, 3.0], [-2.0, 0.0]], dtype=torch.float64)
    assert cosine_loss(x, y).item() == pytest.approx(1.0, rel=1e-12)  # (1 + 0 + 2) / 3


def _graph_run(model, imu: torch.Tensor, perm: torch.Tensor):
    """graph_loss on the (leaf) IMU tokens, with the decoder output and the node features."""
    tokens = model.embed_imu(imu).detach().requires_grad_()
    seen = {}
    hook = model.graph_decoder.register_forward_hook(lambda _m, _a, out: seen.update(recon=out))
    try:
        loss, node_mask = model.graph_loss(tokens, perm)
    finally:
        hook.remove()
    nodes = model.node_features(model.run_blocks_a(tokens)).reshape(node_mask.numel(), -1)
    return tokens, loss, node_mask, seen["recon"].reshape(node_mask.numel(), -1), nodes


def test_parity_graph_loss_is_one_minus_cosine_of_the_masked_nodes(pre) -> None:
    pre.eval()
    imu, _ = _batch(pre, b=2)
    perm = torch.tensor([5, 0, 7, 2, 1, 3, 4, 6])  # 8 node rows; the first int(0.5 * 8) masked
    with torch.no_grad():
        _, loss, node_mask, recon, nodes = _graph_run(pre, imu, perm)
    assert node_mask.nonzero().flatten().tolist() == [0, 2, 5, 7]
    torch.testing.assert_close(loss, cosine_loss(recon[node_mask], nodes[node_mask]))


def test_parity_graph_target_is_not_detached(pre) -> None:
    """A masked IMU's own tokens reach the graph term only through the target (its encoder
    input is the mask token), so a gradient on them proves the target is not detached, as
    published; ``graph_detach_target`` cuts exactly that path."""
    pre.eval()
    imu, _ = _batch(pre, b=2)
    perm = torch.tensor([5, 0, 7, 2, 1, 3, 4, 6])  # rows b·4 + i: masks (0,0) (0,2) (1,1) (1,3)
    detached = create_pretrain_model("evimae_tiny", graph_detach_target=True).eval()
    detached.load_state_dict(pre.state_dict())
    grads = {}
    for name, model in (("published", pre), ("detached", detached)):
        tokens, loss, _, _, _ = _graph_run(model, imu, perm)
        loss.backward()
        # tokens are IMU-major: IMU i of sample b is row i·B + b
        rows = [i * 2 + b for b, i in ((0, 0), (0, 2), (1, 1), (1, 3))]
        grads[name] = tokens.grad[rows].abs().amax(dim=(1, 2))  # one number per masked IMU
    assert (grads["published"] > 1e-6).all(), grads["published"]
    assert (grads["detached"] == 0).all(), grads["detached"]


def test_random_masking_counts_and_restore() -> None:
    g = torch.Generator().manual_seed(0)
    for n, ratio, keep in ((160, 0.75, 40), (1568, 0.9, 156), (196, 0.9, 19)):
        x = torch.arange(2 * n, dtype=torch.float32).reshape(2, n, 1).expand(2, n, 4)
        noise = torch.rand(2, n, generator=g)
        kept, mask, ids_restore = random_masking(x, ratio, noise)
        assert kept.shape == (2, keep, 4)
        assert mask.sum(dim=1).tolist() == [n - keep, n - keep]
        # the kept tokens are those of smallest noise (published: argsort ascending keeps)
        assert torch.equal(mask == 0, noise.argsort(1).argsort(1) < keep)
        # the kept tokens are exactly the positions the mask marks as visible
        for s in range(2):
            visible = x[s, mask[s] == 0, 0]
            assert sorted(kept[s, :, 0].tolist()) == sorted(visible.tolist())
        # ids_restore puts [kept, removed] back in the original order
        removed = torch.zeros(2, n - keep, 4)
        full = torch.gather(
            torch.cat((kept, removed), 1), 1, ids_restore[..., None].expand(2, n, 4)
        )
        assert torch.equal(full[mask == 0], x[mask == 0])


def test_pretrain_masking_ratios_in_forward(pre) -> None:
    """The encoder sees exactly the kept IMU/video tokens; the graph masks >= 1 node."""
    pre.eval()
    imu, video = _batch(pre, b=2)
    seen = {}

    def grab(name):
        def hook(_mod, args, _out):
            seen.setdefault(name, args[0].shape)

        return hook

    handles = [
        pre.blocks_video[0].register_forward_hook(grab("video")),
        pre.blocks_u[0].register_forward_hook(grab("joint")),
    ]
    try:
        with torch.no_grad():
            pre(imu, video, generator=torch.Generator().manual_seed(0))
    finally:
        for h in handles:
            h.remove()
    cfg = pre.cfg
    keep_v = int(cfg.video_tokens * (1 - 0.9))
    keep_a = int(cfg.imu_tokens * (1 - 0.75))
    assert seen["video"] == (2, keep_v, cfg.video_embed_dim)
    assert seen["joint"] == (2, keep_a + keep_v, cfg.video_embed_dim)
    tokens = pre.embed_imu(imu)
    with torch.no_grad():
        _, node_mask = pre.graph_loss(tokens, torch.randperm(8))
    assert node_mask.sum().item() == 4  # half of 2 x 4 nodes
    small_ratio = create_pretrain_model("evimae_tiny", mask_ratio_graph=0.1).eval()
    with torch.no_grad():
        _, node_mask = small_ratio.graph_loss(tokens[:4], torch.randperm(4))
    # int(0.1 * 4) = 0 would leave the published mean over no nodes (NaN): one node is masked
    assert node_mask.sum().item() == 1


def test_masks_are_drawn_in_the_published_order_and_can_be_handed_in(pre) -> None:
    """draw_noise draws like the published forward (graph randperm, IMU rand, video rand), and
    forward(generator=g) is forward(noise=draw_noise(g)), so the harness can fix every mask."""
    cfg = pre.cfg
    g = torch.Generator().manual_seed(11)
    want = (torch.randperm(3 * 4, generator=g), torch.rand(3, cfg.imu_tokens, generator=g),
            torch.rand(3, cfg.video_tokens, generator=g))  # fmt: skip
    noise = pre.draw_noise(3, generator=torch.Generator().manual_seed(11))
    assert isinstance(noise, MaskNoise)
    for got, w in zip((noise.graph, noise.imu, noise.video), want, strict=True):
        assert torch.equal(got, w)
    pre.eval()
    batch = _batch(pre)
    with torch.no_grad():
        a = pre(*batch, generator=torch.Generator().manual_seed(11))
        b = pre(*batch, noise=noise)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_seeded_masking_is_deterministic(pre) -> None:
    pre.eval()
    batch = _batch(pre)
    with torch.no_grad():
        a = pre(*batch, generator=torch.Generator().manual_seed(7))
        b = pre(*batch, generator=torch.Generator().manual_seed(7))
        c = pre(*batch, generator=torch.Generator().manual_seed(8))
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(a["loss_imu"], c["loss_imu"])


def test_imu_target_rebuilds_all_twelve_channels_per_patch(pre) -> None:
    cfg = pre.cfg
    imu, video = _batch(pre, b=1)
    t = pre.imu_target(imu)
    p = cfg.patch
    assert t.shape == (1, cfg.imu_tokens, p * p * 12)
    # token (f, t) holds spec[c, t*p + q, f*p + pf] at position (pf, q, c)
    f_i, t_i, pf, q, c = 2, 5, 3, 11, 7
    token = f_i * (cfg.spec_time // p) + t_i
    assert t[0, token, (pf * p + q) * 12 + c] == imu[0, c, t_i * p + q, f_i * p + pf]
    v = pre.video_target(video)
    assert v.shape == (1, cfg.video_tokens, 2 * p * p * 3)
    side = cfg.img_size // p
    ti, hi, wi, p0, p1, p2, ch = 1, 2, 3, 1, 4, 9, 2
    token = (ti * side + hi) * side + wi
    want = video[0, ch, ti * 2 + p0, hi * p + p1, wi * p + p2]
    assert v[0, token, ((p0 * p + p1) * p + p2) * 3 + ch] == want


def test_pretrain_encoder_keys_fine_tune() -> None:
    """A pretraining checkpoint fine-tunes by loading its encoder keys (same names, shapes)."""
    pre = create_pretrain_model("evimae_tiny")
    ft = create_model("evimae_tiny", 6)
    result = ft.load_state_dict(pre.state_dict(), strict=False)
    assert sorted(result.missing_keys) == [
        "mlp_head.0.bias",
        "mlp_head.0.weight",
        "mlp_head.1.bias",
        "mlp_head.1.weight",
    ]
    decoder_only = {k.split(".")[0] for k in result.unexpected_keys}
    assert decoder_only == {
        "decoder_embed",
        "mask_token",
        "decoder_modality_a",
        "decoder_modality_video",
        "decoder_blocks",
        "decoder_norm",
        "decoder_pred_a",
        "decoder_pred_video",
        "graph_enc_mask_token",
        "graph_decoder",
        "graph_encoder_to_decoder",
    }
    sd = ft.state_dict()
    for k, v in pre.state_dict().items():
        if k in sd:
            assert torch.equal(sd[k], v), k


def test_published_decoder_shapes() -> None:
    with torch.device("meta"):
        pre = create_pretrain_model("evimae_small")
    sd = pre.state_dict()
    shapes = {
        "decoder_embed.weight": (192, 384),
        "mask_token": (1, 1, 192),
        "decoder_modality_a": (1, 1, 192),
        "decoder_modality_video": (1, 1, 192),
        "decoder_blocks.7.attn.qkv.weight": (576, 192),
        "decoder_blocks.7.norm1_v.weight": (192,),
        "decoder_norm.weight": (192,),
        "decoder_pred_a.weight": (3072, 192),
        "decoder_pred_video.weight": (1536, 192),
        "graph_enc_mask_token": (1, 768),
        "graph_encoder_to_decoder.weight": (512, 512),
        "graph_decoder.layers.0.apply_func.linears.0.weight": (512, 512),
        "graph_decoder.layers.0.apply_func.linears.1.weight": (768, 512),
        "graph_decoder.layers.0.apply_func.norms.0.running_var": (512,),
    }
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape, k
    assert "graph_encoder_to_decoder.bias" not in sd
    assert "decoder_blocks.8.norm1.weight" not in sd
    assert not any("pos_embed" in k for k in sd)
