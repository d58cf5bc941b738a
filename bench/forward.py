"""``forward`` → ``model_forward.json``: one forward per variant × mode × backend × precision
× torch threads × batch, with GFLOP/s and the fraction of the measured matmul peak (see
``bench/run_all.py``)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from common import bf16_native, load1, machine, write
from model_latency import _inputs, count_gflop, matmul_peak, percentile


def _time_backend(backend, inputs, mode: str, repeats: int, budget_s: float) -> list[float]:
    """Wall seconds of forwards after one warm-up: ``repeats`` or until ``budget_s`` (≥ 3)."""
    backend.forward(inputs, mode)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        backend.forward(inputs, mode)
        times.append(time.perf_counter() - t0)
    return times


def _matmul_peaks(native_bf16: bool) -> dict[str, dict]:
    """The matmul peak per precision (bf16 only where native) and thread count (1, 2)."""
    peaks: dict[str, dict] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            if prec == "bf16" and not native_bf16:
                continue
            peaks[f"{prec}-t{threads}"] = p = matmul_peak(dtype, "cpu")
            print(f"{prec} matmul peak, {threads} thread(s): {p['gflops']:.1f} GFLOP/s "
                  f"({p['size']}^3), load {load1()}")  # fmt: skip
    return peaks


def _backend(name: str, model, prec: str, variant: str, tmp: Path):
    """A fresh backend ``name`` (eager, compile, aot) of ``model`` at ``prec``."""
    from evimae_stream.runtime.backends.aot import AotBackend
    from evimae_stream.runtime.backends.compiled import CompiledBackend
    from evimae_stream.runtime.backends.eager import EagerBackend

    if name == "compile":
        # every case compiles the same forward code: without a reset Dynamo's recompile limit
        # (8) silently leaves later cases eager
        torch._dynamo.reset()
        return CompiledBackend(model, prec)
    if name == "aot":
        return AotBackend(model, prec, model_id=variant, cache_dir=tmp / "engines")
    return EagerBackend(model, prec)


def _timing_row(times: list[float], batch: int, gflop: float, peak: float) -> dict:
    """A result row's timings: per-window p50/p95, GFLOP/s and the fraction of ``peak``."""
    p50 = statistics.median(times) / batch
    return {
        "batch": batch,
        "n": len(times),
        "p50_ms_per_window": round(p50 * 1e3, 3),
        "p95_ms_per_window": round(percentile(times, 95) / batch * 1e3, 3),
        "gflops": round(gflop / p50, 2),
        "peak_fraction": round(gflop / p50 / peak, 3),
        "load_avg_1m": load1(),
    }


def _print_row(r: dict) -> None:
    """One measured row of the table."""
    diff = r.get("max_abs_logit_diff_vs_eager_fp32")
    print(
        f"{r['variant']:13s} {r['mode']:10s} {r['backend']:8s} {r['precision']:5s} "
        f"{r['threads']:3d} {r['batch']:2d} {r['p50_ms_per_window']:9.2f} "
        f"{r['p95_ms_per_window']:9.2f} {r['gflops']:8.1f} {100 * r['peak_fraction']:5.1f}  "
        f"{'' if diff is None else f'{diff:.2e}'}"
    )


def bench_forward(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """Model forward per variant × mode × backend × precision × threads × batch."""
    from evimae_stream.model import create_model
    from evimae_stream.runtime.backends import ModelInputs

    native_bf16 = bf16_native()
    peaks = _matmul_peaks(native_bf16)
    variants = ["evimae_tiny"] if quick else ["evimae_tiny", "evimae_small"]
    modes = ["multimodal", "imu_only"] if quick else ["multimodal", "imu_only", "video_only"]
    repeats, budget = (8, 3.0) if quick else (30, 15.0)
    rows = []
    header = f"{'variant':13s} {'mode':10s} {'backend':8s} {'prec':5s} thr  B    p50 ms    p95 ms"
    print(header + "  GFLOP/s  %peak  vs eager")
    for variant in variants:
        torch.manual_seed(0)
        model = create_model(variant, 18).eval()
        cfg = model.cfg
        for mode in modes:
            gflop = count_gflop(model, cfg, mode)
            imu, video = _inputs(cfg, mode, "cpu", torch.float32)
            single = ModelInputs(imu, video)
            threads_list = [1, 2]
            batches = [1, 8] if variant == "evimae_tiny" else [1]
            ref = None
            for threads in threads_list:
                torch.set_num_threads(threads)
                backends = ["eager"]
                if not quick and threads == (1 if variant == "evimae_tiny" else 2):
                    backends += ["compile", "aot"]
                for bname in backends:
                    for prec in ("fp32", "bf16"):
                        row = {
                            "variant": variant,
                            "mode": mode,
                            "backend": bname,
                            "precision": prec,
                            "threads": threads,
                            "gflop_per_window": round(gflop, 3),
                        }
                        if prec == "bf16" and not native_bf16:
                            row["unsupported"] = "no AMX/avx512_bf16 (bf16 is emulated, ~1 GFLOP/s)"
                            rows.append(row | {"batch": 1, "load_avg_1m": load1()})
                            continue
                        for batch in batches if bname == "eager" else [1]:
                            if batch == 1:
                                inputs = single
                            else:
                                inputs = ModelInputs(
                                    None if imu is None else imu.repeat(batch, 1, 1, 1),
                                    None if video is None else video.repeat(batch, 1, 1, 1, 1),
                                )
                            backend = _backend(bname, model, prec, variant, tmp)
                            t_prep = time.perf_counter()
                            try:
                                backend.prepare(inputs, (mode,))
                                out = backend.forward(inputs, mode)
                            except Exception as exc:  # recorded; the run goes on
                                r = row | {"batch": batch, "error": f"{type(exc).__name__}: {exc}"}
                                rows.append(r)
                                print(
                                    f"{variant:13s} {mode:10s} {bname:8s} {prec:5s} failed: {exc}"
                                )
                                continue
                            prep_s = time.perf_counter() - t_prep
                            peak = peaks[f"{prec}-t{threads}"]["gflops"]
                            times = _time_backend(backend, inputs, mode, repeats, budget)
                            r = row | _timing_row(times, batch, gflop, peak)
                            if bname != "eager":
                                r["first_call_s"] = round(prep_s, 1)
                            if prec == "fp32" and bname == "eager" and batch == 1:
                                if ref is None:
                                    ref = out
                            elif ref is not None:
                                r["max_abs_logit_diff_vs_eager_fp32"] = float(
                                    (out[:1] - ref).abs().max()
                                )
                                r["top1_agree_vs_eager_fp32"] = bool(
                                    (out.argmax(-1) == ref.argmax(-1)).all()
                                )
                            rows.append(r)
                            _print_row(r)
        del model
    for r in rows:
        if "unsupported" in r and r["threads"] == 1 and r["backend"] == "eager":
            print(f"{r['variant']:13s} {r['mode']:10s} bf16: unsupported: {r['unsupported']}")
    doc = {
        "machine": machine(),
        "matmul_peaks": peaks,
        "bf16_native": native_bf16,
        "results": rows,
    }
    write(doc, "model_forward.json", out_dir)
    return doc
