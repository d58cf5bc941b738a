"""``forward`` → ``model_forward.json``: one forward per variant × mode × backend × precision
(fp32, bf16, int8) × torch threads × batch, with GFLOP/s and the fraction of the measured GEMM
peak of the row's precision, and those peaks (``bench/gemm_peak.py``), all in one run (see
``bench/run_all.py``).

Backends per precision: fp32 and bf16 on eager (and, in a full run, ``torch.compile`` and
``aot`` at the thread count the runtime chooses for the variant), int8 on the int8 backend. A
case whose one forward is predicted (GFLOP / its precision's GEMM peak) to take longer than the
case budget is skipped with the prediction (bf16 where the CPU has no native bf16 is emulated,
slower than fp32). Low-precision rows carry their max |Δlogit| and top-1 agreement against the
eager fp32 row on the same inputs.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from common import bf16_native, load1, machine, write
from gemm_peak import gemm_peaks, print_peaks
from model_latency import _inputs, count_gflop, percentile

#: the backends that run each precision
BACKENDS = {"fp32": ("eager", "compile", "aot"), "bf16": ("eager", "compile", "aot"),
            "int8": ("int8",)}  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One measured row: where and how a forward runs."""

    variant: str
    mode: str
    backend: str
    precision: str
    threads: int
    batch: int


@dataclass(frozen=True)
class Budget:
    """How long to measure: forwards per case, seconds per case (at least 3 forwards)."""

    repeats: int
    case_s: float


def _time_backend(backend, inputs, mode: str, budget: Budget) -> list[float]:
    """Wall seconds of forwards after one warm-up: ``repeats`` or until the case budget (≥ 3)."""
    backend.forward(inputs, mode)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < budget.repeats and (
        len(times) < 3 or time.perf_counter() - start < budget.case_s
    ):
        t0 = time.perf_counter()
        backend.forward(inputs, mode)
        times.append(time.perf_counter() - t0)
    return times


def _backend(case: Case, model, tmp: Path):
    """A fresh backend for ``case``."""
    from evimae_stream.runtime.backends.aot import AotBackend
    from evimae_stream.runtime.backends.compiled import CompiledBackend
    from evimae_stream.runtime.backends.eager import EagerBackend
    from evimae_stream.runtime.backends.int8 import Int8Backend

    if case.backend == "compile":
        # every case compiles the same forward code: without a reset Dynamo's recompile limit
        # (8) silently leaves later cases eager
        torch._dynamo.reset()
        return CompiledBackend(model, case.precision)
    if case.backend == "aot":
        return AotBackend(model, case.precision, model_id=case.variant, cache_dir=tmp / "engines")
    if case.backend == "int8":
        return Int8Backend(model)
    return EagerBackend(model, case.precision)


def _cases(variant: str, mode: str, quick: bool) -> list[Case]:
    """The cases of one variant and mode: eager and int8 at 1 and 2 threads (batch 8 too for
    ``evimae_tiny``), compile and aot (full runs) at the runtime's threads for the variant."""
    runtime_threads = 1 if variant == "evimae_tiny" else 2
    cases = []
    for threads in (1, 2):
        for prec, names in BACKENDS.items():
            for name in names:
                compiled = name in ("compile", "aot")
                if compiled and (quick or threads != runtime_threads):
                    continue
                batches = (1, 8) if variant == "evimae_tiny" and not compiled else (1,)
                cases += [Case(variant, mode, name, prec, threads, b) for b in batches]
    return cases


def _inputs_for(cfg, mode: str, batch: int):
    from evimae_stream.runtime.backends import ModelInputs

    imu, video = _inputs(cfg, mode, "cpu", torch.float32)
    if batch == 1:
        return ModelInputs(imu, video)
    return ModelInputs(
        None if imu is None else imu.repeat(batch, 1, 1, 1),
        None if video is None else video.repeat(batch, 1, 1, 1, 1),
    )


def _timing_row(times: list[float], batch: int, gflop: float, peak: float) -> dict:
    """A result row's timings: per-window p50/p95, GFLOP/s and the fraction of ``peak``."""
    p50 = statistics.median(times) / batch
    return {
        "n": len(times),
        "p50_ms_per_window": round(p50 * 1e3, 3),
        "p95_ms_per_window": round(percentile(times, 95) / batch * 1e3, 3),
        "gflops": round(gflop / p50, 2),
        "peak_fraction": round(gflop / p50 / peak, 3),
        "load_avg_1m": load1(),
    }


def _measure(case: Case, model, gflop: float, peaks: dict, budget: Budget, tmp: Path):
    """The row of ``case`` and its logits (None when it did not run)."""
    row: dict = case.__dict__ | {"gflop_per_window": round(gflop, 3), "load_avg_1m": load1()}
    peak = peaks[f"{case.precision}-t{case.threads}"]["gflops"]
    predicted_s = gflop * case.batch / peak
    if predicted_s > budget.case_s:
        row["skipped"] = f"one forward predicted {predicted_s:.0f} s at the {peak:.0f} GFLOP/s peak"
        return row, None
    torch.set_num_threads(case.threads)
    inputs = _inputs_for(model.cfg, case.mode, case.batch)
    backend = _backend(case, model, tmp)
    t_prep = time.perf_counter()
    try:
        backend.prepare(inputs, (case.mode,))
        out = backend.forward(inputs, case.mode)
    except Exception as exc:  # recorded; the run goes on
        return row | {"error": f"{type(exc).__name__}: {exc}"}, None
    prep_s = time.perf_counter() - t_prep
    row |= _timing_row(_time_backend(backend, inputs, case.mode, budget), case.batch, gflop, peak)
    if case.backend != "eager":
        row["first_call_s"] = round(prep_s, 1)
    return row, out


def _against(row: dict, out: torch.Tensor, ref: torch.Tensor) -> None:
    """Add the row's difference from the eager fp32 logits of the same inputs."""
    row["max_abs_logit_diff_vs_eager_fp32"] = float((out[:1] - ref).abs().max())
    row["top1_agree_vs_eager_fp32"] = bool((out[:1].argmax(-1) == ref.argmax(-1)).all())


def _print_row(r: dict) -> None:
    """One line of the table."""
    head = f"{r['variant']:13s} {r['mode']:10s} {r['backend']:8s} {r['precision']:5s}"
    head += f" {r['threads']:3d} {r['batch']:2d}"
    if "p50_ms_per_window" not in r:
        print(f"{head}  {r.get('skipped') or r.get('error')}")
        return
    diff = r.get("max_abs_logit_diff_vs_eager_fp32")
    print(
        f"{head} {r['p50_ms_per_window']:9.2f} {r['p95_ms_per_window']:9.2f} {r['gflops']:8.1f} "
        f"{100 * r['peak_fraction']:5.1f}  {'' if diff is None else f'{diff:.2e}'}"
    )


def _variant_rows(variant: str, modes: list[str], peaks, budget, quick, tmp) -> list[dict]:
    """Every case of one variant, each low-precision row against eager fp32 of its inputs."""
    from evimae_stream.model import create_model

    torch.manual_seed(0)
    model = create_model(variant, 18).eval()
    rows = []
    for mode in modes:
        gflop = count_gflop(model, model.cfg, mode)
        ref = None
        for case in _cases(variant, mode, quick):
            row, out = _measure(case, model, gflop, peaks, budget, tmp)
            if out is not None and case.backend == "eager" and case.precision == "fp32":
                ref = out[:1] if ref is None else ref
            elif out is not None and ref is not None:
                _against(row, out, ref)
            rows.append(row)
            _print_row(row)
    return rows


def bench_forward(quick: bool, out_dir: Path, tmp: Path) -> dict:
    """Model forward per variant × mode × backend × precision × threads × batch, and the GEMM
    peak of each precision at 1 and 2 threads."""
    peaks = gemm_peaks((1, 2))
    print_peaks(peaks)
    variants = ["evimae_tiny"] if quick else ["evimae_tiny", "evimae_small"]
    modes = ["multimodal", "imu_only"] if quick else ["multimodal", "imu_only", "video_only"]
    budget = Budget(8, 3.0) if quick else Budget(30, 15.0)
    print(
        f"{'variant':13s} {'mode':10s} {'backend':8s} {'prec':5s} thr  B    p50 ms    p95 ms"
        "  GFLOP/s  %peak  vs eager"
    )
    rows = [r for v in variants for r in _variant_rows(v, modes, peaks, budget, quick, tmp)]
    doc = {
        "machine": machine(),
        "gemm_peaks": peaks,
        "bf16_native": bf16_native(),
        "results": rows,
    }
    write(doc, "model_forward.json", out_dir)
    return doc
