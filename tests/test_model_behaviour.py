"""Behaviour of the fine-tune model (on evimae_tiny): modes, batching, graph, attention, export.

References are written independently here: the GIN as an explicit loop over the K4 edge list,
attention from the weight matrices and the q_bias/v_bias definition, BatchNorm/PReLU from their
formulas.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from evimae_stream.model import EviMaeConfig, create_model, model_config
from evimae_stream.model.layers import Block, VideoBlock

CLASSES = 5


def _randomise_norms(model: torch.nn.Module, seed: int = 0) -> None:
    """Give every LayerNorm/BatchNorm/PReLU non-trivial values, so a wrong one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
                m.weight.copy_(1 + 0.3 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.3 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
            if isinstance(m, torch.nn.PReLU):
                m.weight.fill_(0.1 + 0.5 * torch.rand((), generator=g).item())
            if isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            for name in ("q_bias", "v_bias"):
                if hasattr(m, name):
                    getattr(m, name).copy_(0.2 * torch.randn(m.q_bias.shape, generator=g))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on the shared, oversubscribed test machine two OpenMP threads that
    wait on each other at every op barrier make small forwards tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("evimae_tiny", CLASSES)
    _randomise_norms(model)
    return model.eval()


def _inputs(cfg: EviMaeConfig, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    imu = torch.randn(batch, cfg.imu_channels, cfg.spec_time, cfg.spec_freq, generator=g)
    video = torch.randn(batch, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g)
    return imu, video


# ---- config and registry ------------------------------------------------------------------------


def test_config_round_trip_and_overrides() -> None:
    cfg = model_config("evimae_tiny", 7, imu_depth=3)
    assert cfg.imu_depth == 3 and cfg.num_classes == 7
    assert EviMaeConfig.from_dict(cfg.to_dict()) == cfg
    model = create_model(
        "evimae_tiny", 7, **{k: v for k, v in cfg.to_dict().items() if k != "num_classes"}
    )
    assert model.cfg == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.imu_depth = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"imu_embed_dim": 100}, "2 x video_embed_dim"),
        ({"video_heads": 5}, "divisible by video_heads"),
        ({"img_size": 100}, "multiple of patch"),
        ({"num_frames": 7}, "multiple of tubelet"),
        ({"imu_channels": 10}, "3 per IMU"),
        ({"graph_dropout": 1.0}, "graph_dropout"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_invalid_configs_name_the_field(overrides: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        create_model("evimae_tiny", 3, **overrides)


def test_unknown_variant_and_zero_classes() -> None:
    with pytest.raises(KeyError, match="evimae_huge"):
        create_model("evimae_huge", 3)
    with pytest.raises(ValueError, match="num_classes"):
        create_model("evimae_tiny", 0)
    with pytest.raises(ValueError, match="unknown field"):
        EviMaeConfig.from_dict({"imu_depth": 1, "colour": "red"})


# ---- forward ----------------------------------------------------------------------------------


def test_modes_give_finite_logits(tiny) -> None:
    imu, video = _inputs(tiny.cfg, 2)
    with torch.no_grad():
        outs = {
            "multimodal": tiny(imu, video, "multimodal"),
            "imu_only": tiny(imu, None, "imu_only"),  # video never needed
            "video_only": tiny(None, video, "video_only"),  # IMU never needed
        }
    for mode, out in outs.items():
        assert out.shape == (2, CLASSES), mode
        assert torch.isfinite(out).all(), mode
    # the three modes are different computations
    assert not torch.allclose(outs["multimodal"], outs["imu_only"])
    assert not torch.allclose(outs["multimodal"], outs["video_only"])


def test_bad_inputs_are_clear_errors(tiny) -> None:
    imu, video = _inputs(tiny.cfg, 1)
    with pytest.raises(ValueError, match="mode must be one of"):
        tiny(imu, video, "audio_only")
    with pytest.raises(ValueError, match="needs the video input"):
        tiny(imu, None, "multimodal")
    with pytest.raises(ValueError, match=r"imu must be \(B, 12, 320, 128\)"):
        tiny(imu[:, :, :300], None, "imu_only")
    with pytest.raises(ValueError, match="batch sizes differ"):
        tiny(imu, torch.cat((video, video)), "multimodal")


def test_batch_of_two_matches_two_batches_of_one(tiny) -> None:
    imu, video = _inputs(tiny.cfg, 2)
    with torch.no_grad():
        for mode in ("multimodal", "imu_only", "video_only"):
            both = tiny(imu, video, mode)
            one = torch.cat([tiny(imu[i : i + 1], video[i : i + 1], mode) for i in range(2)])
            torch.testing.assert_close(both, one, atol=1e-5, rtol=1e-5)


def test_blocks_u_norms_follow_the_mode(tiny) -> None:
    """imu_only must use norm1_a/norm2_a/norm_a, video_only the _v ones, multimodal the shared."""
    imu, video = _inputs(tiny.cfg, 1)
    blk = tiny.blocks_u[0]
    with torch.no_grad():
        before = {m: tiny(imu, video, m) for m in ("multimodal", "imu_only", "video_only")}
        saved = blk.norm1_a.weight.clone()
        blk.norm1_a.weight.mul_(1.7)
        after = {m: tiny(imu, video, m) for m in ("multimodal", "imu_only", "video_only")}
        blk.norm1_a.weight.copy_(saved)
    assert not torch.allclose(before["imu_only"], after["imu_only"])
    assert torch.equal(before["multimodal"], after["multimodal"])
    assert torch.equal(before["video_only"], after["video_only"])


def test_video_only_uses_a_zero_graph_vector(tiny) -> None:
    _, video = _inputs(tiny.cfg, 1)
    with torch.no_grad():
        x = tiny.run_blocks_u(tiny.video_features(video), "v").mean(dim=1)
        ref = tiny.mlp_head(torch.cat((x, torch.zeros(1, tiny.cfg.graph_hidden)), dim=1))
        torch.testing.assert_close(tiny(None, video, "video_only"), ref)


# ---- IMU path: tokenisation, batched blocks_a, graph ------------------------------------------


def test_imu_tokens_are_per_imu_groups_row_major_over_freq(tiny) -> None:
    cfg = tiny.cfg
    imu, _ = _inputs(cfg, 2)
    with torch.no_grad():
        tokens = tiny.embed_imu(imu)  # (4B, 160, D)
        w, b = tiny.patch_embed_a.proj.weight, tiny.patch_embed_a.proj.bias
        p = cfg.patch
        for i in range(cfg.num_imus):
            for s in range(2):
                spec = imu[s, 3 * i : 3 * i + 3].transpose(1, 2)  # (3, F, T)
                for f_idx, t_idx in ((0, 0), (3, 7), (7, 19)):
                    patch = spec[:, f_idx * p : (f_idx + 1) * p, t_idx * p : (t_idx + 1) * p]
                    want = (w * patch).sum(dim=(1, 2, 3)) + b
                    token = f_idx * (cfg.spec_time // p) + t_idx
                    want = want + tiny.pos_embed_a[0, token] + tiny.modality_a[0, 0]
                    got = tokens[i * 2 + s, token]
                    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_patch_embeddings_equal_their_convolutions() -> None:
    # the stride-equals-kernel convs run as one matmul over the patches: the same sums
    from evimae_stream.model.layers import PatchEmbed, PatchEmbedVideo

    torch.manual_seed(3)
    imu_embed, video_embed = PatchEmbed(16, 3, 32), PatchEmbedVideo(16, 2, 3, 24)
    x2 = torch.randn(2, 3, 128, 330)  # 330: a remainder the conv drops, as must the matmul
    x3 = torch.randn(2, 3, 5, 64, 48)
    with torch.no_grad():
        want2 = imu_embed.proj(x2).flatten(2).transpose(1, 2)
        want3 = video_embed.proj(x3).flatten(2).transpose(1, 2)
        torch.testing.assert_close(imu_embed(x2), want2, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(video_embed(x3), want3, atol=1e-5, rtol=1e-5)
    assert imu_embed(x2).shape == (2, 8 * 20, 32) and video_embed(x3).shape == (2, 2 * 4 * 3, 24)


def test_batched_blocks_a_equals_separate_passes(tiny) -> None:
    imu, _ = _inputs(tiny.cfg, 2)
    with torch.no_grad():
        tokens = tiny.embed_imu(imu)  # (4B, N, D)
        main = tiny.mean_over_imus(tokens)
        batched = tiny.run_blocks_a(torch.cat((tokens, main)))
        b = imu.shape[0]
        for i in range(tiny.cfg.num_imus):
            sep = tiny.run_blocks_a(tokens[i * b : (i + 1) * b])
            torch.testing.assert_close(batched[i * b : (i + 1) * b], sep, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched[4 * b :], tiny.run_blocks_a(main), atol=1e-5, rtol=1e-5)
        # and the published layout: mean of the 4 IMU sequences, IMU-major batch
        torch.testing.assert_close(main, torch.stack(tokens.split(b)).mean(0))


def _bn_eval(x: torch.Tensor, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def _bn_train(x: torch.Tensor, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    mean = x.mean(dim=0)
    var = ((x - mean) ** 2).mean(dim=0)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias


def _prelu(x: torch.Tensor, act: torch.nn.PReLU) -> torch.Tensor:
    return torch.where(x >= 0, x, act.weight * x)


def _gin_reference(gin: torch.nn.Module, nodes: torch.Tensor, train: bool) -> torch.Tensor:
    """Explicit message passing over the K4 edge list (no self loops), then GraphMAE's update."""
    bn = _bn_train if train else _bn_eval
    edges = [(u, v) for u in range(4) for v in range(4) if u != v]  # u → v
    b = nodes.shape[0]
    h = [[nodes[s, i] for i in range(4)] for s in range(b)]
    for layer in gin.layers:
        agg = []
        for s in range(b):
            for v in range(4):
                msg = sum(h[s][u] for (u, dst) in edges if dst == v)
                agg.append((1 + layer.eps) * h[s][v] + msg)
        rows = torch.stack(agg)  # (B·4, D) node rows, sample-major like a DGL batch
        af = layer.apply_func
        mlp = af.mlp
        x = rows @ mlp.linears[0].weight.T + mlp.linears[0].bias
        x = _prelu(bn(x, mlp.norms[0]), mlp.activations[0])
        x = x @ mlp.linears[1].weight.T + mlp.linears[1].bias
        x = _prelu(bn(x, af.norm), af.act)
        h = [[x[s * 4 + i] for i in range(4)] for s in range(b)]
    return torch.stack([torch.stack(h[s]).mean(dim=0) for s in range(b)])  # readout (B, G)


@pytest.mark.parametrize("train", [False, True])
def test_graph_equals_explicit_message_passing(tiny, train: bool) -> None:
    torch.manual_seed(3)
    nodes = torch.randn(3, 4, tiny.cfg.imu_embed_dim)
    gin = tiny.graph_encoder
    dropout = gin.dropout
    try:
        gin.dropout = 0.0
        gin.train(train)
        with torch.no_grad():
            state = {k: v.clone() for k, v in gin.state_dict().items()}
            got = gin(nodes).mean(dim=1)
            gin.load_state_dict(state)  # undo running-stat updates of the train pass
            want = _gin_reference(gin, nodes, train)
    finally:
        gin.dropout = dropout
        gin.eval()
    # batch statistics over 12 rows amplify rounding; a wrong pooling would be off by O(1)
    tol = 1e-4 if train else 1e-5
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


def test_graph_readout_enters_imu_logits(tiny) -> None:
    imu, _ = _inputs(tiny.cfg, 1)
    with torch.no_grad():
        a, graph = tiny.imu_features(imu)
        tokens = tiny.embed_imu(imu)
        nodes = tiny.node_features(tiny.run_blocks_a(tokens))  # the graph path alone
        ref = _gin_reference(tiny.graph_encoder, nodes, False)
        torch.testing.assert_close(graph, ref, atol=1e-5, rtol=1e-5)
        x = tiny.run_blocks_u(a, "a").mean(dim=1)
        want = tiny.mlp_head(torch.cat((x, graph), dim=1))
        torch.testing.assert_close(tiny(imu, None, "imu_only"), want)


def test_without_graph_the_head_is_narrow() -> None:
    model = create_model("evimae_tiny", 4, use_graph=False).eval()
    assert not any(k.startswith("graph_encoder") for k in model.state_dict())
    assert model.mlp_head[1].in_features == model.cfg.video_embed_dim
    imu, video = _inputs(model.cfg, 1)
    with torch.no_grad():
        assert model(imu, video, "multimodal").shape == (1, 4)


# ---- attention ----------------------------------------------------------------------------------


def _reference_attention(x, w_qkv, b_q, b_k, b_v, w_proj, b_proj, heads):
    b, n, c = x.shape
    hd = c // heads
    wq, wk, wv = w_qkv.split(c)
    q = (x @ wq.T + b_q).reshape(b, n, heads, hd).transpose(1, 2)
    k = (x @ wk.T + b_k).reshape(b, n, heads, hd).transpose(1, 2)
    v = (x @ wv.T + b_v).reshape(b, n, heads, hd).transpose(1, 2)
    attn = torch.softmax((q * hd**-0.5) @ k.transpose(-2, -1), dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(b, n, c)
    return out @ w_proj.T + b_proj


def test_video_block_matches_q_bias_v_bias_reference() -> None:
    torch.manual_seed(4)
    blk = VideoBlock(48, 3).eval()
    _randomise_norms(blk, seed=5)
    x = torch.randn(2, 11, 48)
    a = blk.attn
    with torch.no_grad():
        attn = _reference_attention(
            F.layer_norm(x, (48,), blk.norm1.weight, blk.norm1.bias),
            a.qkv.weight,
            a.q_bias,
            torch.zeros(48),
            a.v_bias,
            a.proj.weight,
            a.proj.bias,
            3,
        )
        h = x + attn
        z = F.layer_norm(h, (48,), blk.norm2.weight, blk.norm2.bias)
        z = z @ blk.mlp.fc1.weight.T + blk.mlp.fc1.bias
        z = 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))  # exact GELU
        want = h + z @ blk.mlp.fc2.weight.T + blk.mlp.fc2.bias
        torch.testing.assert_close(blk(x), want, atol=1e-5, rtol=1e-5)


def test_cav_block_attention_uses_its_qkv_bias() -> None:
    torch.manual_seed(6)
    blk = Block(32, 4).eval()
    _randomise_norms(blk, seed=7)
    x = torch.randn(1, 9, 32)
    a = blk.attn
    with torch.no_grad():
        bq, bk, bv = a.qkv.bias.split(32)
        y = F.layer_norm(x, (32,), blk.norm1_v.weight, blk.norm1_v.bias)
        want = x + _reference_attention(y, a.qkv.weight, bq, bk, bv, a.proj.weight, a.proj.bias, 4)
        h = blk.attn(blk.norm1_v(x)) + x
        torch.testing.assert_close(h, want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="block modality"):
        blk(x, "imu")


# ---- torch.export ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["multimodal", "imu_only", "video_only"])
def test_export_matches_eager(tiny, mode: str) -> None:
    imu, video = _inputs(tiny.cfg, 1)
    args = {"multimodal": (imu, video), "imu_only": (imu, None), "video_only": (None, video)}[mode]
    exported = torch.export.export(tiny, args, {"mode": mode})
    with torch.no_grad():
        want = tiny(*args, mode=mode)
        got = exported.module()(*args, mode=mode)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return create_model("evimae_small", 18).eval()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["multimodal", "imu_only", "video_only"])
def test_export_small_every_mode(small, mode: str) -> None:
    # the published shapes: what Torch-TensorRT consumes (batch 1, static)
    g = torch.Generator().manual_seed(1)
    imu = torch.randn(1, 12, 320, 128, generator=g)
    video = torch.randn(1, 3, 16, 224, 224, generator=g)
    args = {"multimodal": (imu, video), "imu_only": (imu, None), "video_only": (None, video)}[mode]
    exported = torch.export.export(small, args, {"mode": mode})
    with torch.no_grad():
        got = exported.module()(*args, mode=mode)
        want = small(*args, mode=mode)
    assert got.shape == (1, 18)
    torch.testing.assert_close(got, want)
