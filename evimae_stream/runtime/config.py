"""How a run of the runtime behaves: :class:`RuntimeConfig` (validated on construction)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class RuntimeConfig:
    """How the pipeline runs (validated): window stride, smoothing, backend choice, limits.

    ``guard_s``: how long after a tick the scheduler cuts the window, so samples stamped just
    before the tick but handed over a little later (a driver thread preempted, a camera frame
    still being decoded) are in it — which is what makes a recording replay to the same windows.
    It adds to the latency; 50 ms holds on a loaded 2-core machine.

    ``threads``: torch's intra-op thread count, set (process-wide) when a :class:`Recognizer` is
    made (``--threads``); None (the default) chooses it per model and machine
    (:func:`evimae_stream.device.choose_threads`: one thread for a small model such as
    ``evimae_tiny``, next to the drivers; every core for ``evimae_small``).

    ``timed_auto``: ``--backend auto`` keeps the fastest verified backend (timed); False keeps
    the most preferred verified one without timing, so a ``--speed max`` replay writes the same
    output on every run even where two backends are close in speed.
    """

    stride_s: float = 0.5
    smooth: int = 1
    backend: str = "auto"
    precision: str | None = None
    cache_dir: Path | None = None
    duration_s: float | None = None
    guard_s: float = 0.05
    topk: int = 3
    stale_after_s: float = 1.0
    threads: int | None = None
    timed_auto: bool = True

    def __post_init__(self) -> None:
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError(f"--threads must be a whole number >= 1, got {self.threads}")
        if not 0.01 <= self.stride_s <= 60:
            raise ValueError(f"--stride must be between 0.01 and 60 s, got {self.stride_s}")
        if not isinstance(self.smooth, int) or self.smooth < 1:
            raise ValueError(f"--smooth must be a whole number >= 1, got {self.smooth}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"--duration must be > 0 s, got {self.duration_s}")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
