"""The model's numerics are pinned: logits bit for bit for a fixed seed (recorded with the
reshape/permute code before the einops rearranges replaced it), and every rearrange equal, bit for
bit, to the explicit reshape and permute it stands for."""

from __future__ import annotations

import pytest
import torch

from evimae_stream.model import create_model
from evimae_stream.model.layers import PatchEmbed, PatchEmbedVideo, _attend

#: evimae_tiny, 8 classes, torch.manual_seed(0); inputs from Generator seed 1; one thread.
#: Recorded on an AVX2 CPU with torch 2.14 (float.hex of each logit).
PINNED_CAPABILITY = "AVX2"
PINNED = {
    "multimodal": (
        "-0x1.db81d00000000p-1",
        "0x1.b03a720000000p+1",
        "-0x1.741d7c0000000p+1",
        "-0x1.8a11040000000p+0",
        "-0x1.227af00000000p-3",
        "-0x1.98fa6c0000000p-2",
        "0x1.7018860000000p+1",
        "-0x1.17125c0000000p-1",
    ),
    "imu_only": (
        "-0x1.6372240000000p-2",
        "0x1.d0b5e00000000p+1",
        "-0x1.8d13ee0000000p+1",
        "-0x1.18f9760000000p+0",
        "-0x1.40d0d80000000p+0",
        "-0x1.619dac0000000p+0",
        "0x1.b5f22e0000000p+0",
        "0x1.771da80000000p-2",
    ),
    "video_only": (
        "-0x1.e630000000000p-7",
        "0x1.df367c0000000p+0",
        "0x1.329bc80000000p-3",
        "-0x1.c78a2c0000000p-1",
        "0x1.e1e9400000000p+0",
        "0x1.49c1440000000p+0",
        "0x1.695f2e0000000p+1",
        "-0x1.ae0cae0000000p-1",
    ),
}


@pytest.fixture(scope="module")
def tiny_and_inputs():
    torch.manual_seed(0)
    model = create_model("evimae_tiny", 8).eval()
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    imu = torch.randn(1, 12, cfg.spec_time, cfg.spec_freq, generator=g)
    video = torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g)
    return model, imu, video


@pytest.mark.parametrize("mode", list(PINNED))
def test_logits_are_pinned(tiny_and_inputs, mode: str) -> None:
    model, imu, video = tiny_and_inputs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            got = model(imu if mode != "video_only" else None,
                        video if mode != "imu_only" else None, mode)[0]  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    want = torch.tensor([float.fromhex(h) for h in PINNED[mode]])
    if torch.backends.cpu.get_cpu_capability() == PINNED_CAPABILITY:
        assert torch.equal(got, want), (got - want).abs().max()
    else:  # other vector units sum in another order: equal to float32 rounding only
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_attention_head_split_is_the_published_reshape() -> None:
    g = torch.Generator().manual_seed(2)
    b, n, h, d = 2, 7, 3, 4
    qkv = torch.randn(b, n, 3 * h * d, generator=g)
    q, k, v = qkv.reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert torch.equal(_attend(qkv, h), want.transpose(1, 2).reshape(b, n, h * d))


def test_patch_cuts_are_the_published_reshapes() -> None:
    g = torch.Generator().manual_seed(3)
    embed = PatchEmbed(4, 3, 5)
    x = torch.randn(2, 3, 9, 13, generator=g)  # ragged edges are cut off
    cut = x[:, :, :8, :12].reshape(2, 3, 2, 4, 3, 4).permute(0, 2, 4, 1, 3, 5).reshape(2, 6, 48)
    assert torch.equal(embed(x), embed.project(cut))
    video = PatchEmbedVideo(4, 2, 3, 5)
    v = torch.randn(1, 3, 5, 8, 9, generator=g)
    tubes = v[:, :, :4, :8, :8].reshape(1, 3, 2, 2, 2, 4, 2, 4)
    tubes = tubes.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(1, 8, 96)
    w = video.proj.weight.reshape(5, -1)
    assert torch.equal(video(v), torch.nn.functional.linear(tubes, w, video.proj.bias))


def test_imu_token_layout_is_the_published_reshape(tiny_and_inputs) -> None:
    model, imu, _ = tiny_and_inputs
    enc = model  # the fine-tune model is the encoder plus its head
    cfg, p = model.cfg, model.cfg.patch
    b, n = imu.shape[0], cfg.num_imus
    tp, fp = cfg.spec_time // p, cfg.spec_freq // p
    x = imu[:, :, : tp * p, : fp * p].reshape(b, n, 3, tp, p, fp, p)
    x = x.permute(1, 0, 5, 3, 2, 4, 6).contiguous().view(n * b, fp * tp, 3 * p * p)
    want = enc.patch_embed_a.project_transposed(x) + enc.pos_embed_a + enc.modality_a
    with torch.no_grad():
        assert torch.equal(enc.embed_imu(imu), want)
        tokens = torch.randn(n * 2, 5, 6)
        assert torch.equal(enc.mean_over_imus(tokens), tokens.reshape(n, 2, 5, 6).mean(dim=0))
        nodes = tokens.mean(dim=1)
        assert torch.equal(enc.node_features(tokens), nodes.reshape(n, 2, 6).transpose(0, 1))
