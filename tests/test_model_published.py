"""evimae_small against the published EVI-MAE facts, and strict loading of published checkpoints.

The expected state dict is written out here from the published architecture (DESIGN §6), not
taken from the code. Synthetic "published" checkpoints use stride-0 tensors (one value per
tensor, expanded to the full shape): torch.save stores one element each, so the files are tiny,
and each tensor's value is its index, so a key loaded into the wrong place is caught.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.errors import ArtifactError
from evimae_stream.model import checkpoint_filter_fn, create_model, load_official_checkpoint

CLASSES = 18


def _ln(prefix: str, dim: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (dim,), f"{prefix}.bias": (dim,)}


def _linear(prefix: str, out: int, inp: int, bias: bool = True) -> dict[str, tuple[int, ...]]:
    d = {f"{prefix}.weight": (out, inp)}
    if bias:
        d[f"{prefix}.bias"] = (out,)
    return d


def _bn(prefix: str, dim: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (dim,),
        f"{prefix}.bias": (dim,),
        f"{prefix}.running_mean": (dim,),
        f"{prefix}.running_var": (dim,),
        f"{prefix}.num_batches_tracked": (),
    }


def _cav_block(p: str, dim: int) -> dict[str, tuple[int, ...]]:
    d: dict[str, tuple[int, ...]] = {}
    for n in ("norm1", "norm1_a", "norm1_v"):
        d |= _ln(f"{p}.{n}", dim)
    d |= _linear(f"{p}.attn.qkv", 3 * dim, dim)
    d |= _linear(f"{p}.attn.proj", dim, dim)
    for n in ("norm2", "norm2_a", "norm2_v"):
        d |= _ln(f"{p}.{n}", dim)
    d |= _linear(f"{p}.mlp.fc1", 4 * dim, dim)
    d |= _linear(f"{p}.mlp.fc2", dim, 4 * dim)
    return d


def _video_block(p: str, dim: int) -> dict[str, tuple[int, ...]]:
    d = _ln(f"{p}.norm1", dim)
    d |= {f"{p}.attn.q_bias": (dim,), f"{p}.attn.v_bias": (dim,)}
    d |= _linear(f"{p}.attn.qkv", 3 * dim, dim, bias=False)
    d |= _linear(f"{p}.attn.proj", dim, dim)
    d |= _ln(f"{p}.norm2", dim)
    d |= _linear(f"{p}.mlp.fc1", 4 * dim, dim)
    d |= _linear(f"{p}.mlp.fc2", dim, 4 * dim)
    return d


def published_shapes(classes: int = CLASSES) -> dict[str, tuple[int, ...]]:
    """The published EVIMAEFT state dict (names, shapes, order), from DESIGN §6."""
    d: dict[str, tuple[int, ...]] = {"modality_a": (1, 1, 768), "modality_video": (1, 1, 384)}
    d |= {"patch_embed_a.proj.weight": (768, 3, 16, 16), "patch_embed_a.proj.bias": (768,)}
    d |= {
        "patch_embed_video.proj.weight": (384, 3, 2, 16, 16),
        "patch_embed_video.proj.bias": (384,),
    }
    for i in range(11):
        d |= _cav_block(f"blocks_a.{i}", 768)
    for i in range(12):
        d |= _video_block(f"blocks_video.{i}", 384)
    d |= _cav_block("blocks_u.0", 384)
    for n in ("norm_a", "norm_video", "norm"):
        d |= _ln(n, 384)
    d |= _ln("mlp_head.0", 896)
    d |= _linear("mlp_head.1", classes, 896)
    for i, din in ((0, 768), (1, 512)):
        p = f"graph_encoder.layers.{i}"
        d[f"{p}.eps"] = (1,)
        d |= _linear(f"{p}.apply_func.mlp.linears.0", 512, din)
        d |= _linear(f"{p}.apply_func.mlp.linears.1", 512, 512)
        d |= _bn(f"{p}.apply_func.mlp.norms.0", 512)
        d[f"{p}.apply_func.mlp.activations.0.weight"] = (1,)
        d |= _bn(f"{p}.apply_func.norm", 512)
        d[f"{p}.apply_func.act.weight"] = (1,)
    return d


def synthetic_published(classes: int = CLASSES) -> dict[str, torch.Tensor]:
    """A DataParallel-style checkpoint: ``module.`` + key → tensor filled with its index."""
    out = {}
    for i, (k, shape) in enumerate(published_shapes(classes).items()):
        if k.endswith("num_batches_tracked"):
            t = torch.tensor(i, dtype=torch.long)
        else:
            t = torch.full((1,) * max(len(shape), 1), float(i)).expand(shape or (1,))
            t = t.reshape(()) if not shape else t
        out[f"module.{k}"] = t
    return out


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on the shared, oversubscribed test machine two OpenMP threads that
    wait on each other at every op barrier make small forwards tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small() -> torch.nn.Module:
    return create_model("evimae_small", CLASSES).eval()


def test_state_dict_is_the_published_one(small) -> None:
    sd = small.state_dict()
    expected = published_shapes()
    assert len(expected) == 446  # the count stated in the design, from the facts above
    assert len(sd) == 446
    assert list(sd) == list(expected)  # names and published order
    for k, shape in expected.items():
        assert tuple(sd[k].shape) == shape, k


def test_representative_published_facts(small) -> None:
    sd = small.state_dict()
    assert sd["blocks_a.0.attn.qkv.bias"].shape == (2304,)
    assert "blocks_video.0.attn.qkv.bias" not in sd
    assert sd["graph_encoder.layers.0.eps"].item() == 0.0
    # eps is a buffer, not a parameter; pos tables are in neither the params nor the state dict
    params = dict(small.named_parameters())
    assert "graph_encoder.layers.0.eps" not in params
    assert not any("pos_embed" in k for k in sd)
    assert not any("pos_embed" in k for k in params)
    assert isinstance(small.graph_encoder.layers[0].apply_func.mlp.activations[0], torch.nn.PReLU)
    for m in small.modules():
        if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm1d)):
            assert m.eps == 1e-5
        if isinstance(m, torch.nn.GELU):
            assert m.approximate == "none"


def test_parameter_count(small) -> None:
    n = sum(p.numel() for p in small.parameters())
    assert abs(n - 103.5e6) <= 0.2e6, n


def test_sinusoid_tables_match_videomae_formula(small) -> None:
    def table(n: int, d: int) -> np.ndarray:  # VideoMAE's get_sinusoid_encoding_table
        j = np.arange(d)
        t = np.arange(n)[:, None] / np.power(10000, 2 * (j // 2) / d)[None, :]
        t[:, 0::2] = np.sin(t[:, 0::2])
        t[:, 1::2] = np.cos(t[:, 1::2])
        return t.astype(np.float32)

    np.testing.assert_allclose(small.pos_embed_a[0].numpy(), table(160, 768), atol=1e-6)
    np.testing.assert_allclose(small.pos_embed_video[0].numpy(), table(1568, 384), atol=1e-6)


def test_every_published_key_loads_strictly(tmp_path: Path, small) -> None:
    ckpt = synthetic_published()
    path = tmp_path / "wear_ft.pth"
    torch.save(ckpt, path)
    model = load_official_checkpoint(path)
    assert model.cfg.num_classes == CLASSES and not model.training
    loaded = model.state_dict()
    for i, key in enumerate(published_shapes()):
        assert torch.all(loaded[key] == i), key  # each value landed under its own name
    # the fixed tables (not in the file) are the real ones, not left uninitialised
    assert torch.equal(model.pos_embed_a, small.pos_embed_a)
    assert torch.equal(model.pos_embed_video, small.pos_embed_video)


def test_wrapped_checkpoint_and_num_classes_from_head(tmp_path: Path) -> None:
    path = tmp_path / "cmu.pth"
    torch.save({"state_dict": synthetic_published(32), "epoch": 200}, path)
    assert load_official_checkpoint(path).cfg.num_classes == 32


def test_filter_only_strips_the_prefix() -> None:
    sd = {"module.a.b": torch.zeros(1), "c": torch.ones(2), "x.module.d": torch.ones(3)}
    out = checkpoint_filter_fn(sd, None)
    assert list(out) == ["a.b", "c", "x.module.d"]
    assert all(out[k] is v for k, v in zip(out, sd.values(), strict=True))


def test_missing_key_is_named(tmp_path: Path) -> None:
    ckpt = synthetic_published()
    del ckpt["module.blocks_a.3.norm1_a.weight"]
    path = tmp_path / "missing.pth"
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError) as err:
        load_official_checkpoint(path)
    msg = str(err.value)
    assert "missing.pth" in msg and "blocks_a.3.norm1_a.weight" in msg and "\n" not in msg


def test_unexpected_key_is_named(tmp_path: Path) -> None:
    ckpt = synthetic_published()
    ckpt["module.another_mlp_head.1.weight"] = torch.zeros(18, 512)
    path = tmp_path / "extra.pth"
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError, match=r"extra\.pth.*unexpected.*another_mlp_head"):
        load_official_checkpoint(path)


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    ckpt = synthetic_published()
    ckpt["module.blocks_video.5.attn.q_bias"] = torch.zeros(192)
    path = tmp_path / "shape.pth"
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError, match=r"shape\.pth.*blocks_video\.5\.attn\.q_bias"):
        load_official_checkpoint(path)


def test_explicit_num_classes_must_match_head(tmp_path: Path) -> None:
    path = tmp_path / "ft.pth"
    torch.save(synthetic_published(), path)
    with pytest.raises(ArtifactError, match=r"mlp_head\.1\.weight"):
        load_official_checkpoint(path, num_classes=5)


def test_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint\n" * 10)
    with pytest.raises(ArtifactError, match=r"garbage\.pth: not a loadable checkpoint: a text"):
        load_official_checkpoint(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ArtifactError, match=r"list\.pth: not a model state dict"):
        load_official_checkpoint(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"nope\.pth: checkpoint file not found"):
        load_official_checkpoint(tmp_path / "nope.pth")


def test_head_key_needed_without_num_classes(tmp_path: Path) -> None:
    ckpt = synthetic_published()
    del ckpt["module.mlp_head.1.weight"]
    path = tmp_path / "nohead.pth"
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError, match=r"nohead\.pth: no mlp_head\.1\.weight"):
        load_official_checkpoint(path)


def test_small_forward_shapes(small) -> None:
    imu = torch.randn(1, 12, 320, 128)
    with torch.no_grad():
        out = small(imu, None, "imu_only")
    assert out.shape == (1, CLASSES) and torch.isfinite(out).all()
    assert math.isclose(small.cfg.head_dim, 896)
