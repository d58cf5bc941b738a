"""Forward latency of the EVI-MAE variants per window (batch 1), with FLOPs and matmul peak.

For each variant × mode × precision: median and p95 wall time of one forward under
``torch.inference_mode()``, GFLOP per window (``torch.utils.flop_counter.FlopCounterMode``),
achieved GFLOP/s and its fraction of this machine's measured matmul peak for that dtype.
Precisions: CPU fp32 and bf16 through the runtime's eager backend (bf16 = autocast with the
matmul weights cast once), and on CUDA (when present) fp32 and fp16. The peak for a row is the
best n³ matmul rate of its dtype at its thread count, measured in the same run.

A case whose single forward is predicted (GFLOP / measured peak) to exceed ``--case-budget-s``
is skipped and says why — on CPUs without native bf16 (no AVX512-BF16/AMX) a bf16 matmul runs
at a fraction of a GFLOP/s, and evimae_small would take many minutes per window. Each measured
case runs until ``--repeats`` forwards or ``--case-budget-s`` seconds, at least 3 forwards.

    python bench/model_latency.py [--variants evimae_tiny evimae_small] [--modes ...]
        [--repeats 30] [--threads 2] [--case-budget-s 15] [--out bench/results/model_latency.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from evimae_stream.model import create_model
from evimae_stream.types import MODES

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "model_latency.json"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    """The SIMD flags that decide matmul speed (AVX2/AVX-512/bf16/AMX)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
    return [f for f in wanted if f in flags]


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(
    dtype: torch.dtype,
    device: str,
    max_size: int = 4096,
    repeats: int = 3,
    sizes: tuple[int, ...] = (512, 1024, 2048, 4096, 8192),
) -> dict:
    """The best median GFLOP/s of n³ matmuls over ``sizes`` up to ``max_size`` (a size whose
    one matmul would take > 2 s is skipped): the peak is what the library reaches at its best
    size, which on AMX CPUs is not the largest one (bf16 4096³ runs slower than 1024³ there)."""
    best = {"size": 0, "gflops": 0.0}
    rate = None  # GFLOP/s seen so far, to skip sizes that would take too long
    for size in (n for n in sizes if n <= max_size):
        if rate and 2 * size**3 / 1e9 / rate > 2.0:
            break
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        a @ b
        _sync(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            _sync(device)
            times.append(time.perf_counter() - t0)
        rate = 2 * size**3 / statistics.median(times) / 1e9
        if rate > best["gflops"]:
            best = {"size": size, "gflops": rate}
    return best


def _inputs(cfg, mode: str, device: str, dtype: torch.dtype):
    imu = torch.randn(1, cfg.imu_channels, cfg.spec_time, cfg.spec_freq, device=device, dtype=dtype)
    video = torch.randn(
        1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, device=device, dtype=dtype
    )
    if mode == "imu_only":
        return imu, None
    if mode == "video_only":
        return None, video
    return imu, video


def count_gflop(model, cfg, mode: str) -> float:
    """GFLOP of one batch-1 forward (matmuls, convolutions, attention)."""
    args = _inputs(cfg, mode, "cpu", torch.float32)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(*args, mode)
    return counter.get_total_flops() / 1e9


def time_case(model, cfg, mode, device, precision, repeats, budget_s, warmup=2) -> list[float]:
    """Wall times (s) of batch-1 forwards through the runtime's eager backend (bf16/fp16:
    autocast with weights cast once) after warm-ups: up to ``repeats`` or ``budget_s``."""
    from evimae_stream.runtime.backends import ModelInputs
    from evimae_stream.runtime.backends.eager import EagerBackend

    backend = EagerBackend(model, precision, torch.device(device))
    inputs = ModelInputs(*_inputs(cfg, mode, device, torch.float32))
    times: list[float] = []
    for _ in range(warmup):
        backend.forward(inputs, mode)
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        backend.forward(inputs, mode)  # returns logits on the CPU: synchronised
        times.append(time.perf_counter() - t0)
    return times


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def _peaks_and_precisions(thread_counts: list[int], cuda: bool) -> tuple[dict, list[tuple]]:
    """The matmul peak at each thread count (so every row is compared with what its threads
    can do) and the cases to measure: (label, device, runtime precision, CPU threads, peak
    key)."""
    peaks = {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        peaks[f"cpu-fp32-t{threads}"] = matmul_peak(torch.float32, "cpu")
        peaks[f"cpu-bf16-t{threads}"] = matmul_peak(torch.bfloat16, "cpu")
    if cuda:
        peaks["cuda-fp32"] = matmul_peak(torch.float32, "cuda", 8192, 10)
        peaks["cuda-fp16"] = matmul_peak(torch.float16, "cuda", 8192, 10)
    for name, p in peaks.items():
        print(f"matmul peak {name}: {p['gflops']:.1f} GFLOP/s ({p['size']}^3)")

    # (label, device, runtime precision, CPU threads, peak key)
    precisions = []
    for threads in thread_counts:
        precisions += [
            ("cpu-fp32", "cpu", "fp32", threads, f"cpu-fp32-t{threads}"),
            ("cpu-bf16", "cpu", "bf16", threads, f"cpu-bf16-t{threads}"),
        ]
    if cuda:
        precisions += [
            ("cuda-fp32", "cuda", "fp32", None, "cuda-fp32"),
            ("cuda-fp16", "cuda", "fp16", None, "cuda-fp16"),
        ]

    return peaks, precisions


def _variant_rows(variant: str, args, peaks: dict, precisions: list[tuple]) -> list[dict]:
    """One row per mode × case of ``variant``: timings, or why a case was skipped."""
    rows: list[dict] = []
    model = create_model(variant, args.classes).eval()
    cfg = model.cfg
    params = sum(p.numel() for p in model.parameters())
    for mode in args.modes:
        model.to(device="cpu")
        gflop = count_gflop(model, cfg, mode)
        for prec, device, rt_prec, threads, peak_key in precisions:
            row = {
                "variant": variant,
                "mode": mode,
                "precision": prec,
                "params_m": round(params / 1e6, 3),
                "gflop": round(gflop, 3),
                "threads": threads,
            }
            peak = peaks[peak_key]["gflops"]
            predicted = gflop / peak
            if predicted > args.case_budget_s:
                row["skipped"] = (
                    f"one forward predicted {predicted:.0f} s at the measured "
                    f"{peak:.2f} GFLOP/s {prec} matmul peak"
                )
                rows.append(row)
                print(f"{variant:13s} {mode:10s} {prec:9s} t={threads} skipped: {row['skipped']}")
                continue
            if threads:
                torch.set_num_threads(threads)
            warmup = 1 if predicted > 1.0 else 2
            times = time_case(
                model, cfg, mode, device, rt_prec, args.repeats, args.case_budget_s, warmup
            )
            p50 = statistics.median(times)
            row |= {
                "n": len(times),
                "p50_ms": round(p50 * 1e3, 2),
                "p95_ms": round(percentile(times, 95) * 1e3, 2),
                "gflops_achieved": round(gflop / p50, 2),
                "peak_fraction": round(gflop / p50 / peak, 4),
            }
            rows.append(row)
            print(
                f"{variant:13s} {mode:10s} {prec:9s} t={threads} p50 {row['p50_ms']:9.2f} ms  "
                f"p95 {row['p95_ms']:9.2f} ms  {gflop:8.2f} GFLOP  "
                f"{row['gflops_achieved']:7.1f} GFLOP/s  "
                f"{100 * row['peak_fraction']:5.1f}% peak  (n={len(times)})"
            )
    del model
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=["evimae_tiny", "evimae_small"])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--repeats", type=int, default=30, help="forwards per case (max)")
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[os.cpu_count() or 1],
        help="CPU intra-op thread counts to measure (each one is a separate row)",
    )
    parser.add_argument("--case-budget-s", type=float, default=15.0)
    parser.add_argument("--classes", type=int, default=18)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(args.threads))
    torch.manual_seed(0)

    cuda = torch.cuda.is_available()
    peaks, precisions = _peaks_and_precisions(args.threads, cuda)
    results = [
        row for variant in args.variants for row in _variant_rows(variant, args, peaks, precisions)
    ]
    doc = {
        "machine": {
            "cpu": cpu_model(),
            "cpu_flags": cpu_flags(),
            "cores": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "torch": torch.__version__,
            "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
            "python": platform.python_version(),
        },
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "matmul_peak": peaks,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
