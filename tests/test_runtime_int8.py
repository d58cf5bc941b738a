"""Issue 24: the int8 backend (what it quantises, its check against eager fp32 on real windows,
its fallback), ``auto``'s precision rules on this CPU, and the torch thread count per model."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from evimae_stream.artifact import load_artifact
from evimae_stream.device import choose_threads, cpu_has_native_bf16, precision_warning
from evimae_stream.errors import InputError
from evimae_stream.model import create_model
from evimae_stream.model.layers import VideoAttention
from evimae_stream.runtime.backends import ModelInputs, select_backend
from evimae_stream.runtime.backends import base as backends_base
from evimae_stream.runtime.backends.int8 import _plain_attention, quantize_blocks
from evimae_stream.runtime.backends.select import _candidates
from tests.helpers.cli import cli, events
from tests.helpers.paths import REPO

CPU = torch.device("cpu")
DEMO_MODEL = REPO / "evimae_stream" / "assets" / "demo_model"


def _dynamic_int8(module: nn.Module) -> bool:
    return type(module).__name__ == "Linear" and "quantized" in type(module).__module__


@pytest.fixture(scope="module")
def demo():
    """The bundled demo model (trained: its logits mean something) and one real-sized window."""
    model, _ = load_artifact(DEMO_MODEL)
    cfg = model.cfg
    g = torch.Generator().manual_seed(3)
    example = ModelInputs(
        torch.randn(1, 12, cfg.spec_time, cfg.spec_freq, generator=g),
        torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g),
    )
    return model.eval(), example


def test_only_the_transformer_blocks_linears_become_int8(demo):
    model, _ = demo
    q = quantize_blocks(model)
    int8 = {name for name, m in q.named_modules() if _dynamic_int8(m)}
    blocks = [f"{p}.{i}" for p in ("blocks_a", "blocks_video", "blocks_u")
              for i in range(len(getattr(model, p)))]  # fmt: skip
    want = {f"{b}.{lin}" for b in blocks for lin in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2")}
    assert int8 == want
    # the head, the graph encoder and the patch embeddings stay float32 modules
    assert isinstance(q.mlp_head[1], nn.Linear) and not _dynamic_int8(q.mlp_head[1])
    assert not any(_dynamic_int8(m) for m in q.graph_encoder.modules())
    assert isinstance(q.patch_embed_video.proj, nn.Conv3d)
    # the model the runtime keeps for eager fp32 is not touched
    assert not any(_dynamic_int8(m) for m in model.modules())
    assert any(isinstance(m, VideoAttention) for m in model.modules())


def test_video_attention_with_its_bias_stored_once_is_the_same_product():
    torch.manual_seed(0)
    attn = VideoAttention(64, 2).eval()
    with torch.no_grad():
        attn.q_bias.normal_()
        attn.v_bias.normal_()
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        torch.testing.assert_close(_plain_attention(attn)(x), attn(x), rtol=1e-6, atol=1e-6)


def test_int8_is_verified_on_the_window_and_reports_its_check(demo, caplog):
    model, example = demo
    caplog.set_level(logging.INFO)
    modes = ("multimodal", "imu_only", "video_only")
    backend = select_backend("int8", None, model, example, modes, device=CPU)
    assert backend.label == "int8/int8/cpu" and backend.note == ""
    check = backend.check
    assert check.ok and check.top1_agree
    assert 0 < check.max_abs_dprob < 0.05  # int8 really ran, and stays close to fp32
    assert check.max_abs_diff > 0
    assert "verified" in caplog.text and "|Δp|" in caplog.text
    # the same through auto when int8 is asked for, and untimed (--speed max) too
    picked = select_backend("auto", "int8", model, example, modes, device=CPU, timed=False)
    assert picked.label == "int8/int8/cpu" and picked.check is not None


def test_int8_drift_falls_back_to_eager_fp32_with_the_reason(demo, monkeypatch, caplog):
    model, example = demo
    monkeypatch.setitem(backends_base.TOLERANCE, "int8", (0.0, 0.0))  # nothing passes
    backend = select_backend("int8", "int8", model, example, ("imu_only",), device=CPU)
    assert backend.label == "eager/fp32/cpu"
    assert backend.note.startswith("fallback from int8/int8: imu_only: drifts from eager fp32")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "falling back to eager fp32" in warnings[0].message


def test_a_backend_refuses_a_precision_it_does_not_run(demo):
    model, example = demo
    with pytest.raises(InputError, match="--backend eager runs fp32, bf16, fp16"):
        select_backend("eager", "int8", model, example, ("imu_only",), device=CPU)
    with pytest.raises(InputError, match="--backend int8 runs int8"):
        select_backend("int8", "bf16", model, example, ("imu_only",), device=CPU)


def test_auto_tries_int8_only_when_asked_and_bf16_only_with_native_bf16():
    for timed in (True, False):
        unasked = _candidates(None, CPU, timed)
        assert all(p != "int8" for _, p in unasked)
        assert _candidates("int8", CPU, timed) == [("int8", "int8")]
    if not cpu_has_native_bf16():
        assert _candidates(None, CPU, True) == [] and _candidates(None, CPU, False) == []


@pytest.mark.skipif(cpu_has_native_bf16(), reason="this CPU has native bf16")
def test_bf16_without_native_bf16_warns_that_it_is_emulated():
    text = precision_warning("bf16", CPU)
    assert "no native bf16" in text and "emulated" in text and "int8" in text
    assert precision_warning("int8", CPU) is None and precision_warning("fp32", CPU) is None


def test_threads_one_for_a_small_model_every_core_for_evimae_small(monkeypatch):
    from evimae_stream import device

    tiny = create_model("evimae_tiny", 5)
    with torch.device("meta"):  # 100 M parameters counted, none allocated
        small = create_model("evimae_small", 18)
    monkeypatch.setattr(device, "usable_cores", lambda: 2)
    assert choose_threads(tiny)[0] == 1
    n, why = choose_threads(small)
    assert n == 2 and "every core" in why
    monkeypatch.setattr(device, "usable_cores", lambda: 1)
    assert choose_threads(small)[0] == 1


def test_cli_int8_replay_reports_backend_check_and_threads(tmp_path):
    out = tmp_path / "run.jsonl"
    res = cli("--precision", "int8", "--duration", "3", "--jsonl", out, "--threads", "2")
    assert res.returncode == 0, res.stderr
    ev = events(out)
    assert ev[0]["threads"] == 2
    end = ev[-1]
    assert end["backend"] == "int8/int8/cpu"
    assert end["backend_check"]["top1_agree"] is True
    assert 0 < end["backend_check"]["max_abs_dprob"] < 0.05
    assert "checked against eager fp32 on the first window: top-1 agrees" in res.stderr
    assert "torch threads 2 (--threads)" in res.stderr


def test_cli_refuses_int8_on_eager_and_bad_threads_before_the_run():
    res = cli("--backend", "eager", "--precision", "int8", "--duration", "1")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "--backend eager runs fp32, bf16, fp16" in res.stderr
    res = cli("--threads", "0", "--duration", "1")
    assert res.returncode == 2 and "--threads must be a whole number >= 1" in res.stderr
