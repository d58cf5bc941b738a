"""What this machine can run on: the default torch device, AMX on the CPU, and the precision rule.

One place for the hardware facts the backends, training and the benchmarks decide by, so the
rule "fp16 needs CUDA" is written once and every caller refuses it with the same line.
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
