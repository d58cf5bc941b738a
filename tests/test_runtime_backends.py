"""Backends: eager reference, verification, the TensorRT path (export, cache, verify, fallback)
with the stand-in compiler of tests/mocks/tensorrt.py."""

from __future__ import annotations

import logging
import sys

import pytest
import torch

from evimae_stream.device import cpu_has_amx, cpu_has_native_bf16
from evimae_stream.errors import InputError
from evimae_stream.model import create_model
from evimae_stream.runtime.backends import ModelInputs, select_backend, verify
from evimae_stream.runtime.backends.eager import EagerBackend
from evimae_stream.runtime.backends.tensorrt import TensorRTBackend
from tests.mocks import tensorrt as fake_trt

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    # one block per encoder: the same code paths, quicker to export
    return create_model("evimae_tiny", 5, imu_depth=1, video_depth=1).eval()


@pytest.fixture(scope="module")
def example(model):
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    return ModelInputs(
        torch.randn(1, 12, cfg.spec_time, cfg.spec_freq, generator=g),
        torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g),
    )


@pytest.fixture
def trt(monkeypatch):
    fake_trt.reset()
    monkeypatch.setitem(sys.modules, "torch_tensorrt", fake_trt)
    return fake_trt


def test_eager_fp32_is_the_model(model, example):
    backend = EagerBackend(model, "fp32", CPU)
    for mode in ("multimodal", "imu_only", "video_only"):
        got = backend.forward(example, mode)
        with torch.no_grad():
            want = model(
                example.imu if mode != "video_only" else None,
                example.video if mode != "imu_only" else None,
                mode,
            )
        assert got.dtype == torch.float32 and got.shape == (1, 5)
        torch.testing.assert_close(got, want)


def test_model_inputs_from_a_modes_tensors_invert_for_mode(example):
    # one mapping from a mode's positional tensors back to (imu, video), for every backend
    for mode, imu, video in (
        ("multimodal", example.imu, example.video),
        ("imu_only", example.imu, None),
        ("video_only", None, example.video),
    ):
        back = ModelInputs.from_mode(mode, example.for_mode(mode))
        assert back.imu is imu and back.video is video


def test_bf16_autocast_stays_close_to_fp32(model, example):
    result = verify(
        EagerBackend(model, "bf16", CPU), EagerBackend(model, "fp32", CPU), example, ("imu_only",)
    )
    assert result.max_abs_diff > 0  # really ran in lower precision
    assert result.max_abs_diff < 0.5


def test_bf16_casts_weights_once_with_autocast_numerics(model, example):
    backend = EagerBackend(model, "bf16", CPU)
    # the caller's model is untouched (the fp32 reference runs on it)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    linears = [m for m in backend.model.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in backend.model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)
    for mode in ("multimodal", "imu_only", "video_only"):
        got = backend.forward(example, mode)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            want = model(
                example.imu if mode != "video_only" else None,
                example.video if mode != "imu_only" else None,
                mode,
            ).float()
        # autocast casts the same fp32 weights to the same bf16 values: identical logits
        torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_fp16_on_cpu_is_refused(model, example):
    with pytest.raises(InputError, match="fp16 needs a CUDA GPU"):
        select_backend("eager", "fp16", model, example, ("imu_only",), device=CPU)


def test_unknown_backend_and_precision(model, example):
    with pytest.raises(InputError, match="--backend"):
        select_backend("onnx", None, model, example, ("imu_only",), device=CPU)
    with pytest.raises(InputError, match="--precision"):
        select_backend("eager", "int8", model, example, ("imu_only",), device=CPU)


def test_tensorrt_compiles_caches_and_reloads(model, example, trt, tmp_path):
    modes = ("multimodal", "imu_only")
    first = select_backend(
        "tensorrt", None, model, example, modes, device=CPU, model_id="m1", cache_dir=tmp_path
    )
    assert isinstance(first, TensorRTBackend)
    assert (first.compiled, first.loaded) == (2, 0)
    assert trt.calls["compile"] == 2 and trt.calls["save"] == 2
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all("m1" in f and "trt2.99.0-standin" in f for f in files)
    assert any("multimodal" in f for f in files) and any("imu_only" in f for f in files)
    ref = EagerBackend(model, "fp32", CPU)
    for mode in modes:
        torch.testing.assert_close(
            first.forward(example, mode), ref.forward(example, mode), atol=1e-4, rtol=1e-4
        )
    # a second start loads the engines and compiles nothing
    second = select_backend(
        "tensorrt", None, model, example, modes, device=CPU, model_id="m1", cache_dir=tmp_path
    )
    assert isinstance(second, TensorRTBackend)
    assert (second.compiled, second.loaded) == (0, 2)
    assert trt.calls["compile"] == 2 and trt.calls["load"] == 2
    torch.testing.assert_close(
        second.forward(example, "multimodal"),
        ref.forward(example, "multimodal"),
        atol=1e-4,
        rtol=1e-4,
    )
    # another precision is another cache entry
    third = TensorRTBackend(model, "bf16", CPU, model_id="m1", cache_dir=tmp_path)
    assert third.cache_path("imu_only") != second.cache_path("imu_only")
    # another model under the same id (two blocks, not one) is another engine, never this one
    other = create_model("evimae_tiny", 5, imu_depth=2, video_depth=1).eval()
    fourth = TensorRTBackend(other, "fp32", CPU, model_id="m1", cache_dir=tmp_path)
    assert fourth.cache_path("imu_only") != second.cache_path("imu_only")
    assert trt.precisions[0] == {torch.float32}


def test_tensorrt_drift_falls_back_with_one_warning(model, example, trt, tmp_path, caplog):
    trt.reset(drift=0.5)
    with caplog.at_level(logging.WARNING):
        backend = select_backend(
            "tensorrt",
            None,
            model,
            example,
            ("imu_only",),
            device=CPU,
            model_id="m2",
            cache_dir=tmp_path,
        )
    assert isinstance(backend, EagerBackend) and backend.precision == "fp32"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "tensorrt" in msg and "drifts from eager fp32" in msg and "\n" not in msg
    assert "fallback from tensorrt" in backend.note


def test_tensorrt_missing_package_falls_back(model, example, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "torch_tensorrt", None)  # import raises ImportError
    with caplog.at_level(logging.WARNING):
        backend = select_backend("tensorrt", None, model, example, ("imu_only",), device=CPU)
    assert isinstance(backend, EagerBackend)
    assert "torch_tensorrt is not installed" in caplog.records[-1].getMessage()


def test_corrupt_cache_entry_is_rebuilt(model, example, trt, tmp_path):
    backend = TensorRTBackend(model, "fp32", CPU, model_id="m3", cache_dir=tmp_path)
    path = backend.cache_path("imu_only")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an exported program")
    backend.prepare(example, ("imu_only",))
    assert backend.compiled == 1 and backend.loaded == 0
    assert (
        TensorRTBackend(model, "fp32", CPU, model_id="m3", cache_dir=tmp_path)
        .cache_path("imu_only")
        .stat()
        .st_size
        > 100
    )


def test_auto_on_cpu_picks_a_verified_eager(model, example):
    backend = select_backend("auto", None, model, example, ("multimodal", "imu_only"), device=CPU)
    assert backend.name == "eager"
    # timed: bf16 is tried where the CPU has native bf16, and kept only where it is faster
    assert backend.precision in (("fp32", "bf16") if cpu_has_native_bf16() else ("fp32",))
    assert backend.note.startswith("auto:")


def test_untimed_auto_keeps_the_preferred_verified_backend(model, example, monkeypatch):
    from evimae_stream.runtime.backends.base import Backend

    def no_clock(*args, **kwargs):
        raise AssertionError("an untimed auto must not time the candidates")

    monkeypatch.setattr(Backend, "time_forward", no_clock)
    picks = {
        select_backend("auto", None, model, example, ("imu_only",), device=CPU, timed=False).label
        for _ in range(3)
    }
    # on a CPU the preference is eager bf16 where AMX makes it fast, else eager fp32
    assert picks == ({"eager/bf16/cpu"} if cpu_has_amx() else {"eager/fp32/cpu"})
    fixed = select_backend("auto", "fp32", model, example, ("imu_only",), device=CPU, timed=False)
    assert fixed.label == "eager/fp32/cpu"


@pytest.mark.slow
def test_torch_compile_backend_matches_eager(model, example):
    # Inductor on a CPU: tens of seconds of C++ compilation, hence slow
    from evimae_stream.runtime.backends.compiled import CompiledBackend

    backend = select_backend("compile", None, model, example, ("imu_only",), device=CPU)
    assert isinstance(backend, CompiledBackend) and backend.label == "compile/fp32/cpu"
    torch.testing.assert_close(
        backend.forward(example, "imu_only"),
        EagerBackend(model, "fp32", CPU).forward(example, "imu_only"),
        atol=1e-4,
        rtol=1e-4,
    )


@pytest.mark.slow
def test_aot_package_compiles_caches_reloads_and_replaces_a_corrupt_entry(
    model, example, tmp_path, caplog
):
    # AOTInductor for real (a C++ compile, ~10 s): the package runs the forward as one call
    from evimae_stream.runtime.backends.aot import AotBackend

    first = AotBackend(model, "fp32", CPU, model_id="m-aot", cache_dir=tmp_path)
    path = first.cache_path("imu_only")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a package")
    strided = torch.zeros(1, 12, example.imu.shape[2], 2 * example.imu.shape[3])[..., ::2]
    strided.copy_(example.imu)
    with caplog.at_level(logging.WARNING):
        first.prepare(ModelInputs(strided, None), ("imu_only",))
    assert (first.compiled, first.loaded) == (1, 0)
    assert "unreadable" in caplog.records[-1].getMessage()
    assert path.stat().st_size > 10_000 and not list(tmp_path.glob("*.tmp.pt2"))

    again = AotBackend(model, "fp32", CPU, model_id="m-aot", cache_dir=tmp_path)
    again.prepare(example, ("imu_only",))
    assert (again.compiled, again.loaded) == (0, 1)
    assert first.lock_free and again.lock_free  # through the C interface, GIL released
    want = EagerBackend(model, "fp32", CPU).forward(example, "imu_only")
    for backend in (first, again):
        got = backend.forward(example, "imu_only")
        assert got.dtype == torch.float32 and got.shape == (1, 5)
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    # the spectrogram can come out as a strided view: built on one, run on a contiguous one (the
    # loop above) and the other way round, the package must give the same logits
    torch.testing.assert_close(
        again.forward(ModelInputs(strided, None), "imu_only"), want, atol=1e-4, rtol=1e-4
    )
    # inputs of another shape are refused, never read with the package's shapes
    with pytest.raises(ValueError, match="was built for inputs"):
        again.forward(ModelInputs(example.imu[..., :64], None), "imu_only")
    # another model under the same id (here: two blocks, not one) is another package
    other = create_model("evimae_tiny", 5, imu_depth=2, video_depth=1).eval()
    assert (
        AotBackend(other, "fp32", CPU, model_id="m-aot", cache_dir=tmp_path).cache_path("imu_only")
        != path
    )
    # another precision or mode is another package, never the fp32 one
    assert AotBackend(model, "bf16", CPU, model_id="m-aot", cache_dir=tmp_path).cache_path(
        "imu_only"
    ) not in (path, first.cache_path("multimodal"))
    # a package built for one thread has serial loops, one built for more runs its loops on
    # all of them: the thread count at build time (one, or several) is part of the key
    threads = torch.get_num_threads()
    try:
        keys = {}
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            keys[n] = first.cache_path("imu_only")
    finally:
        torch.set_num_threads(threads)
    assert keys[1] != keys[2] and keys[2] == keys[3]
    assert path == keys[1 if threads == 1 else 2]


@pytest.mark.slow
@pytest.mark.skipif(not cpu_has_amx(), reason="bf16 is only offered where the CPU has AMX")
def test_aot_bf16_compiles_the_eager_bf16_numerics(model, example, tmp_path):
    backend = select_backend(
        "aot", "bf16", model, example, ("imu_only",), device=CPU, cache_dir=tmp_path
    )
    assert backend.label == "aot/bf16/cpu"
    got = backend.forward(example, "imu_only")
    eager = EagerBackend(model, "bf16", CPU).forward(example, "imu_only")
    torch.testing.assert_close(got, eager, atol=2e-2, rtol=0)
    assert int(got.argmax()) == int(
        EagerBackend(model, "fp32", CPU).forward(example, "imu_only").argmax()
    )


def test_aot_without_a_compiler_falls_back_with_one_warning(
    model, example, tmp_path, monkeypatch, caplog
):
    import torch._inductor.config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", (str(tmp_path / "no-such-c++"),))
    with caplog.at_level(logging.WARNING):
        backend = select_backend(
            "aot", None, model, example, ("imu_only",), device=CPU, cache_dir=tmp_path
        )
    assert isinstance(backend, EagerBackend) and backend.label == "eager/fp32/cpu"
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "aot/fp32 not used" in warnings[0].getMessage()
    assert backend.note.startswith("fallback from aot/fp32")
    assert not list(tmp_path.glob("*.pt2"))
