"""GPU checks for a machine with an NVIDIA GPU: latency per window of evimae_small and evimae_tiny
under fp16 eager, ``torch.compile``, CUDA graphs, AOTInductor and Torch-TensorRT (when
installed), each checked against eager fp32 on the same inputs (max |Δlogit|, top-1 agreement).

    python bench/gpu_checks.py [--variants evimae_small evimae_tiny] [--modes ...]
        [--repeats 50] [--out bench/results/gpu_checks.json]

Without CUDA it prints one line and exits 0 (nothing to measure). Every case runs on its own:
one that fails (no C++ compiler for Inductor, TensorRT missing, out of memory) is recorded with
its error and the rest go on. Latency is the median of ``--repeats`` batch-1 forwards after
warm-up, synchronised (``torch.cuda.synchronize``), inputs already on the GPU.

Cases per variant × mode:
- ``eager/fp32``, ``eager/fp16`` (autocast), ``eager/fp16-weights`` (model.half());
- ``compile/fp16`` — ``torch.compile(mode="max-autotune-no-cudagraphs")`` under fp16 autocast;
- ``compile-cudagraphs/fp16`` — ``torch.compile(mode="reduce-overhead")`` (CUDA graphs);
- ``cudagraph/fp16`` — a hand-captured ``torch.cuda.CUDAGraph`` of the eager fp16 forward;
- ``aot/fp16`` — the runtime's ``--backend aot`` (``torch.export`` + AOTInductor);
- ``tensorrt/fp16`` — ``torch.export`` + ``torch_tensorrt.dynamo.compile`` (when installed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "gpu_checks.json"
MODES = ("multimodal", "imu_only", "video_only")


def _inputs(cfg, mode: str, dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    imu = torch.randn(1, cfg.imu_channels, cfg.spec_time, cfg.spec_freq, generator=g)
    video = torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g)
    imu, video = imu.cuda().to(dtype), video.cuda().to(dtype)
    if mode == "imu_only":
        return (imu,)
    if mode == "video_only":
        return (video,)
    return (imu, video)


def _time(fn, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def _cases(model, mode: str, cfg):
    """(name, precision, builder) — builder returns a zero-argument callable giving logits."""
    fp32_in = _inputs(cfg, mode)
    from evimae_stream.runtime.backends.base import ModelInputs, ModeModule

    mm = ModeModule(model, mode).eval()

    def eager_fp32():
        return lambda: mm(*fp32_in)

    def eager_fp16():
        def run():
            with torch.autocast("cuda", dtype=torch.float16):
                return mm(*fp32_in)

        return run

    def weights_fp16():
        half = ModeModule(model.half(), mode).eval()
        ins = tuple(x.half() for x in fp32_in)
        return lambda: half(*ins)

    def compiled(kind: str):
        def build():
            fn = torch.compile(mm, mode=kind, dynamic=False)

            def run():
                with torch.autocast("cuda", dtype=torch.float16):
                    return fn(*fp32_in)

            return run

        return build

    def cudagraph():
        static = tuple(x.clone() for x in fp32_in)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.autocast("cuda", dtype=torch.float16):
            for _ in range(3):
                mm(*static)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.autocast("cuda", dtype=torch.float16):
            out = mm(*static)

        def run():
            graph.replay()
            return out

        return run

    def tensorrt():
        import torch_tensorrt

        exported = torch.export.export(mm, fp32_in)
        trt = torch_tensorrt.dynamo.compile(
            exported, inputs=list(fp32_in), enabled_precisions={torch.float16}
        )
        return lambda: trt(*fp32_in)

    def aot():
        # the runtime's --backend aot: export, AOTInductor compile (fp16 autocast compiled in)
        import tempfile

        from evimae_stream.runtime.backends.aot import AotBackend

        backend = AotBackend(
            model, "fp16", torch.device("cuda"), cache_dir=Path(tempfile.mkdtemp())
        )
        backend.prepare(ModelInputs.from_mode(mode, fp32_in), (mode,))
        return lambda: backend._run(fp32_in, mode)

    yield "eager", "fp32", eager_fp32
    yield "eager", "fp16-autocast", eager_fp16
    yield "compile", "fp16-autocast", compiled("max-autotune-no-cudagraphs")
    yield "compile-cudagraphs", "fp16-autocast", compiled("reduce-overhead")
    yield "cudagraph", "fp16-autocast", cudagraph
    yield "aot", "fp16-autocast", aot
    yield "tensorrt", "fp16", tensorrt
    yield "eager", "fp16-weights", weights_fp16  # last: it converts the model to half


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["evimae_small", "evimae_tiny"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_checks: no CUDA device here (torch.cuda.is_available() is False); skipped")
        return 0

    from evimae_stream.model import create_model

    try:
        import torch_tensorrt

        trt_version = torch_tensorrt.__version__
    except Exception as exc:  # not installed or broken: recorded, its case is skipped
        trt_version = f"unavailable: {type(exc).__name__}: {exc}"
    rows = []
    for variant in args.variants:
        for mode in args.modes:
            torch.manual_seed(0)
            model = create_model(variant, 18).eval().cuda()
            cfg = model.cfg
            ref = None
            for backend, precision, build in _cases(model, mode, cfg):
                row = {"variant": variant, "mode": mode, "backend": backend, "precision": precision}
                if backend == "tensorrt" and trt_version.startswith("unavailable"):
                    rows.append(row | {"skipped": f"torch_tensorrt {trt_version}"})
                    print(f"{variant:13s} {mode:10s} {backend:19s} skipped: {trt_version}")
                    continue
                try:
                    with torch.inference_mode():
                        t0 = time.perf_counter()
                        fn = build()
                        out = fn().float()
                        torch.cuda.synchronize()
                        first = time.perf_counter() - t0
                        times = _time(fn, args.repeats)
                        out = fn().float().clone()
                except Exception as exc:  # recorded; the next case runs
                    msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    rows.append(row | {"error": msg})
                    print(f"{variant:13s} {mode:10s} {backend:19s} {precision:14s} error: {msg}")
                    torch.cuda.empty_cache()
                    continue
                if ref is None:
                    ref = out
                p50 = statistics.median(times)
                row |= {
                    "p50_ms": round(p50 * 1e3, 3),
                    "min_ms": round(min(times) * 1e3, 3),
                    "windows_per_s": round(1 / p50, 1),
                    "first_call_s": round(first, 2),
                    "max_abs_logit_diff_vs_eager_fp32": float((out - ref).abs().max()),
                    "top1_agree_vs_eager_fp32": bool((out.argmax(-1) == ref.argmax(-1)).all()),
                }
                rows.append(row)
                print(
                    f"{variant:13s} {mode:10s} {backend:19s} {precision:14s} "
                    f"p50 {row['p50_ms']:8.3f} ms  {row['windows_per_s']:8.1f} win/s  "
                    f"|Δlogit| {row['max_abs_logit_diff_vs_eager_fp32']:.2e}"
                )
            del model
            torch.cuda.empty_cache()
    doc = {
        "gpu": torch.cuda.get_device_name(0),
        "capability": list(torch.cuda.get_device_capability(0)),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "torch_tensorrt": trt_version,
        "repeats": args.repeats,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
