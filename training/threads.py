"""How many torch threads a training run, its spectrogram cache and an evaluation use.

torch's default is every core, which on a busy machine oversubscribes it: measured on a loaded
2-core EPYC, one window's spectrogram took 1,033 ms at 2 threads against 10 ms at 1, and a
training step 6.4 s against 2.7 s. So the count is chosen, never left to the default: the
configured one, else the cores this process may run on that the rest of the machine leaves idle
(one-minute load average), at least one. ``bench/real_data.py`` measures 1 against 2.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pick_threads(requested: int = 0) -> tuple[int, str]:
    """(threads, why): ``requested`` when > 0, else the idle usable cores (at least 1)."""
    if requested > 0:
        return requested, "configured"
    cpus = usable_cpus()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    n = max(1, min(cpus, int(cpus - busy + 0.5)))
    return n, f"auto: {cpus} usable cores, load {busy:.1f}"


def set_threads(requested: int = 0, what: str = "torch") -> int:
    """Pick (:func:`pick_threads`), apply to torch and log the choice; returns the count."""
    n, why = pick_threads(requested)
    torch.set_num_threads(n)
    log.info("%s threads: %d (%s)", what, n, why)
    return n
