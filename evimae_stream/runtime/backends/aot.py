"""AOTInductor: ``torch.export`` per mode → ``torch._inductor.aoti_compile_and_package`` → a
compiled package (C++ and the frozen weights), cached per (model hash and config, torch version,
CPU or GPU, precision, mode), run lock-free through its C interface (:mod:`.aoti_runner`).

Why it exists: the eager forward is a few hundred short torch calls, and between two of them
the thread must win the interpreter lock back. In a live run the driver and scheduler threads
hold that lock too, and on a 2-core machine the eager forward of ``evimae_tiny`` was
measured 6× slower (14 → 89 ms) next to one busy Python thread. The compiled package runs the
whole forward as one call (10 → 10 ms next to the same thread), without the per-call interpreter
overhead, and — called through the C interface — without holding the lock, so the other threads
(the reader of a ``--speed max`` replay) run meanwhile. ``freezing`` folds the weight casts and
packs the matmul weights for oneDNN at compile time.

Lower precision is compiled in, not applied around the call: the exported module enters autocast
itself (export records the casts), with the matmul weights stored in that precision first, as
the eager backend runs it. Compiling takes ~15–30 s per mode on 2 cores and needs a C++ compiler;
a cached package loads in well under a second.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from evimae_stream.runtime.backends.aoti_runner import LockFreeRunner, extract_library
from evimae_stream.runtime.backends.base import (
    DEFAULT_CACHE,
    DTYPES,
    BackendUnavailable,
    ModeModule,
    register_backend,
)
from evimae_stream.runtime.backends.cached import CachedBackend, tmp_path
from evimae_stream.runtime.backends.eager import cast_matmul_weights

log = logging.getLogger(__name__)


class _Autocast(nn.Module):
    """``inner`` run under autocast to ``dtype`` inside its own forward, so ``torch.export``
    records the casts; the logits come out float32."""

    def __init__(self, inner: nn.Module, device_type: str, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.inner(*xs).float()


@register_backend
class AotBackend(CachedBackend):
    """One AOTInductor package per mode, built once and then loaded from the cache."""

    name = "aot"
    what = "package"

    def __init__(
        self,
        model,
        precision: str = "fp32",
        device: torch.device | None = None,
        model_id: str = "model",
        cache_dir: str | Path | None = None,
    ) -> None:
        cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE / self.name
        super().__init__(model, precision, device or torch.device("cpu"), model_id, cache)
        self._low: nn.Module | None = None  # the model with its matmul weights cast, made once

    def _environment(self) -> tuple[str, ...]:
        """The torch build and the device: a package is C++ compiled for both. On the CPU also
        whether it was built for one thread: Inductor then writes serial loops (no OpenMP at
        all), and a package built for several threads runs its loops on all of them — a
        1-thread replay must not load the other one, nor the other way round."""
        if self.device.type == "cuda":
            return f"torch{torch.__version__}", torch.cuda.get_device_name(self.device)
        loops = "serial" if torch.get_num_threads() == 1 else "parallel"
        return f"torch{torch.__version__}", f"cpu-{torch.backends.cpu.get_cpu_capability()}", loops

    def _module(self, mode: str) -> nn.Module:
        if self.precision == "fp32":
            return ModeModule(self.model, mode)
        dtype = DTYPES[self.precision]
        if self._low is None:  # one copy with cast weights for every mode
            self._low = cast_matmul_weights(self.model, dtype)
        return _Autocast(ModeModule(self._low, mode), self.device.type, dtype)

    def _build(self, mode: str, args: tuple[torch.Tensor, ...], path: Path):
        exported = self._export(self._module(mode), mode, args)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        try:
            torch._inductor.aoti_compile_and_package(
                exported, package_path=str(tmp), inductor_configs={"freezing": True}
            )
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendUnavailable(
                f"AOTInductor compile of mode {mode} failed ({first}); it needs a C++ compiler"
            ) from None
        try:
            os.replace(tmp, path)
            log.info("aot: cached %s package at %s", mode, path)
        except OSError as exc:  # a cache we cannot write costs a rebuild next time, no more
            log.warning("aot: could not cache the %s package at %s (%s)", mode, path, exc)
            path = tmp
        runner = self._load(path)
        if path == tmp:
            tmp.unlink(missing_ok=True)
        return runner

    def _load(self, path: Path):
        """The package's model, lock-free through the C interface where it can be (CPU, weights
        in the library), else torch's loader (which holds the GIL during the forward)."""
        if self.device.type == "cpu":
            try:
                return LockFreeRunner(extract_library(path, path.with_suffix(".so")))
            except OSError as exc:
                log.info("aot: %s runs through torch's loader (%s)", path.name, exc)
        return torch._inductor.aoti_load_package(str(path))

    @property
    def lock_free(self) -> bool:
        """Whether every prepared mode runs without holding the GIL."""
        return bool(self._runners) and all(
            isinstance(r, LockFreeRunner) for r in self._runners.values()
        )
