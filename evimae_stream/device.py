"""What this machine can run on: the default torch device, native bf16 on the CPU, the precision
rules and the torch thread count.

One place for the hardware facts the backends, training and the benchmarks decide by, so the
rule "fp16 needs CUDA" is written once and every caller refuses it with the same line, the rule
"bf16 on a CPU needs native bf16 (AVX512-BF16 or AMX)" is written once and every caller warns
with the same line (``auto`` tries bf16 on a CPU only there, and keeps it only where it measures
it faster), and the thread rule (:func:`choose_threads`) is written once for every run.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from evimae_stream.errors import InputError


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {w for line in text.splitlines() if line.startswith("flags") for w in line.split()}


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (``amx_*`` in /proc/cpuinfo flags or torch's capability
    string), where bf16 matmuls are fast."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # older torch
        cap = ""
    return "AMX" in cap.upper() or any(w.startswith("amx") for w in _cpu_flags())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX512-BF16's dot products);
    elsewhere (AVX2 only, e.g. AMD Zen 2) oneDNN and ATen emulate bf16 matmuls, slower than
    fp32."""
    return cpu_has_amx() or "avx512_bf16" in _cpu_flags()


def check_precision_device(precision: str | None, device: torch.device) -> None:
    """InputError when ``precision`` cannot run on ``device`` (fp16 needs a CUDA GPU)."""
    if precision == "fp16" and device.type != "cuda":
        raise InputError(
            "--precision fp16 needs a CUDA GPU (none here); use fp32, or bf16 on a CPU"
        )


def precision_warning(precision: str | None, device: torch.device) -> str | None:
    """Why ``precision`` will not be faster than fp32 on ``device``, or None. bf16 on a CPU
    without native bf16 is emulated (bench/gemm_peak.py on a 2-core AMD EPYC Zen 2, AVX2 only:
    bf16 GEMMs 3 GFLOP/s against 17 fp32 on one thread, one process)."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return (
            "--precision bf16: this CPU has no native bf16 (no AVX512-BF16, no AMX), so bf16 "
            "is emulated here, several times slower than fp32; use fp32 (the default) or "
            "--precision int8 for speed, bf16 only to check its numerics"
        )
    if precision == "int8" and device.type != "cpu":
        return "--precision int8 runs on the CPU only; this run falls back to eager fp32"
    return None


#: the threads a model gets (:func:`choose_threads`): every core from this many parameters on
ALL_CORES_FROM_PARAMS = 20_000_000


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def choose_threads(model: torch.nn.Module) -> tuple[int, str]:
    """torch's intra-op thread count for ``model`` next to the drivers, and why.

    A large model (``evimae_small``, 100 M parameters) is bound by big GEMMs that scale with the
    cores: on a 2-core AMD EPYC the CLI's one thread took 3,472 ms per window where two took
    2,360 ms (issue 24). A small one (``evimae_tiny``, 0.9 M) is a few hundred short calls: on the
    2-core AMX VM one thread ran it 3–5× faster than two under load, and it leaves a core to the
    drivers and the scheduler; in a live synthetic run on a 2-core Zen 2 at load 10 (seven
    users) the forward p50 was 306 and 400 ms at one thread against 233 ms at two, and
    ``evimae_small``'s 12.5 s at one against 14.7 s at two (load 6-7): opposite ways, both
    within the noise of a machine whose second core was never free, so they do not overturn
    the quiet-machine figures the rule rests on."""
    params = sum(p.numel() for p in model.parameters())
    cores = usable_cores()
    if params >= ALL_CORES_FROM_PARAMS and cores > 1:
        return cores, f"{params / 1e6:.1f} M parameters: every core ({cores})"
    return 1, f"{params / 1e6:.1f} M parameters: one thread, the other cores for the drivers"
