"""What this machine can run on: the default torch device, AMX on the CPU, and the precision rules.

One place for the hardware facts the backends, training and the benchmarks decide by, so the
rule "fp16 needs CUDA" is written once and every caller refuses it with the same line, and the
rule "bf16 on a CPU pays off only with AMX" is written once and every caller warns with the same
line (``auto`` picks bf16 on a CPU only with AMX for the same reason).
"""

from __future__ import annotations

from pathlib import Path

import torch

from evimae_stream.errors import InputError


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (``amx_*`` in /proc/cpuinfo flags or torch's capability
    string), where bf16 matmuls are fast."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # older torch
        cap = ""
    if "AMX" in cap.upper():
        return True
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(
        w.startswith("amx")
        for line in text.splitlines()
        if line.startswith("flags")
        for w in line.split()
    )


def check_precision_device(precision: str | None, device: torch.device) -> None:
    """InputError when ``precision`` cannot run on ``device`` (fp16 needs a CUDA GPU)."""
    if precision == "fp16" and device.type != "cuda":
        raise InputError(
            "--precision fp16 needs a CUDA GPU (none here); use fp32, or bf16 on a CPU"
        )


def precision_warning(precision: str | None, device: torch.device) -> str | None:
    """Why ``precision`` will not be faster than fp32 on ``device``, or None. bf16 on a CPU
    without AMX tiles runs at fp32 speed or slower (``evimae_small`` on a 2-core AMD EPYC with
    avx512_bf16 but no AMX: 2056 ms bf16 vs 2081 ms fp32 per window) and only loses precision."""
    if precision == "bf16" and device.type == "cpu" and not cpu_has_amx():
        return (
            "--precision bf16: this CPU has no AMX, so bf16 runs no faster than fp32 here and "
            "only loses precision; use fp32 (the default) unless you are checking bf16 numerics"
        )
    return None
