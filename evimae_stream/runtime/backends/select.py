"""Pick and prepare the backend: ``--backend auto|eager|compile|aot|tensorrt``, ``--precision``.

Every candidate other than eager fp32 is prepared on a real window and verified against eager
fp32 (:func:`~evimae_stream.runtime.backends.base.verify`). An explicitly requested backend that
fails (not installed, compile error, drift) falls back to eager fp32 with ONE warning line naming
the reason. ``auto`` tries, in order: eager fp32 (the reference); on a CPU with AMX eager bf16; on
CUDA eager fp16, ``torch.compile`` fp16 and TensorRT fp16 when ``torch_tensorrt`` is installed;
it times a few forwards of each candidate that passed and keeps the fastest. (``torch.compile``
on a CPU costs tens of seconds of start-up for little gain on a small model, so ``auto`` leaves
it to an explicit ``--backend compile`` there, and the AOTInductor package, which takes as long
to build the first time, to ``--backend aot``.) With ``timed=False`` (``--speed max``, whose
output must not depend on timing noise) ``auto`` keeps the last candidate in that order that
passes its check instead: TensorRT, then ``torch.compile``, then eager in low precision, then
eager fp32 — the usual order of speed, decided without a clock.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from evimae_stream.device import check_precision_device, cpu_has_amx, default_device
from evimae_stream.errors import InputError
from evimae_stream.runtime.backends.base import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    ModelInputs,
    verify,
)
from evimae_stream.runtime.backends.eager import EagerBackend

log = logging.getLogger(__name__)

#: what ``auto`` is called: not a backend, the choice among them
AUTO = "auto"
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


def complete_example(example: ModelInputs, model: nn.Module) -> ModelInputs:
    """The example with a missing modality replaced by a fixed pseudo-random tensor of the
    model's input shape, so every mode can be exported and checked (real data where it exists)."""
    cfg = model.cfg
    gen = torch.Generator().manual_seed(0)
    imu = example.imu
    if imu is None:
        imu = torch.randn(1, cfg.imu_channels, cfg.spec_time, cfg.spec_freq, generator=gen)
    video = example.video
    if video is None:
        video = torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=gen)
    return ModelInputs(imu, video)


def backend_choices() -> tuple[str, ...]:
    """``--backend``'s choices: ``auto`` and every registered backend."""
    return (AUTO, *BACKENDS)


def _make(kind: str, precision: str, model: nn.Module, device, model_id, cache_dir) -> Backend:
    return BACKENDS[kind].create(model, precision, device, model_id, cache_dir)


def _candidates(precision: str | None, device: torch.device) -> list[tuple[str, str]]:
    """``auto``'s (backend, precision) pairs in rising preference: every backend it offers on
    ``device`` (by ``auto_rank``) in the low precision that runs fast there; eager fp32 is the
    reference, not a candidate."""
    cuda = device.type == "cuda"
    precs = (
        [precision] if precision else (["fp16"] if cuda else (["bf16"] if cpu_has_amx() else []))
    )
    offered = sorted(
        (cls for cls in BACKENDS.values() if cls.offered_by_auto(device)),
        key=lambda cls: cls.auto_rank,
    )
    return [
        (cls.name, p) for cls in offered for p in precs if not (cls is EagerBackend and p == "fp32")
    ]


def select_backend(
    name: str,
    precision: str | None,
    model: nn.Module,
    example: ModelInputs,
    modes: tuple[str, ...],
    *,
    device: torch.device | None = None,
    model_id: str = "model",
    cache_dir: str | Path | None = None,
    timed: bool = True,
) -> Backend:
    """The backend to run, prepared for ``modes`` and verified on ``example`` (a real window).
    ``timed``: ``auto`` keeps the fastest verified candidate; False: the most preferred one
    (see the module doc), so the same machine always makes the same choice."""
    if name != AUTO:
        BACKENDS.get_or_fail(name, "--backend")
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"--precision: unknown {precision!r}; use one of {', '.join(PRECISIONS)}")
    device = device or default_device()
    check_precision_device(precision, device)
    example = complete_example(example, model)
    reference = EagerBackend(model, "fp32", device)
    if BACKENDS.get(name) is EagerBackend and precision in (None, "fp32"):
        return reference
    if name != AUTO:
        wanted = precision or (BACKENDS[name].cuda_precision if device.type == "cuda" else "fp32")
        try:
            backend = _make(name, wanted, model, device, model_id, cache_dir)
            backend.prepare(example, modes)
            check = verify(backend, reference, example, modes)
        except (BackendUnavailable, RuntimeError, ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            if check.ok:
                log.info(
                    "backend %s verified (max |Δlogit| %.3g)", backend.label, check.max_abs_diff
                )
                return backend
            reason = check.reason
        log.warning("backend %s/%s not used: %s; falling back to eager fp32", name, wanted, reason)
        reference.note = f"fallback from {name}/{wanted}: {reason}"
        return reference
    if not timed:
        return _preferred(precision, model, example, modes, reference, device, model_id, cache_dir)
    primary = next(m for m in ("multimodal", "imu_only", "video_only") if m in modes)
    best, best_t = reference, reference.time_forward(example, primary)
    log.info("auto: eager/fp32 %.1f ms", best_t * 1e3)
    for kind, prec in _candidates(precision, device):
        try:
            cand = _make(kind, prec, model, device, model_id, cache_dir)
            cand.prepare(example, modes)
            check = verify(cand, reference, example, modes)
            if not check.ok:
                log.info("auto: %s/%s rejected: %s", kind, prec, check.reason)
                continue
            t = cand.time_forward(example, primary)
        except (BackendUnavailable, RuntimeError, ValueError, OSError, InputError) as exc:
            log.info("auto: %s/%s unavailable: %s", kind, prec, str(exc).splitlines()[0])
            continue
        log.info("auto: %s/%s %.1f ms", kind, prec, t * 1e3)
        if t < best_t:
            best, best_t = cand, t
    best.note = f"auto: fastest verified ({best_t * 1e3:.1f} ms per {primary} forward)"
    return best


def _preferred(
    precision, model, example, modes, reference: Backend, device, model_id, cache_dir
) -> Backend:
    """``auto`` without timing: the last candidate of :func:`_candidates` that verifies."""
    for kind, prec in reversed(_candidates(precision, device)):
        try:
            cand = _make(kind, prec, model, device, model_id, cache_dir)
            cand.prepare(example, modes)
            check = verify(cand, reference, example, modes)
        except (BackendUnavailable, RuntimeError, ValueError, OSError, InputError) as exc:
            log.info("auto: %s/%s unavailable: %s", kind, prec, str(exc).splitlines()[0])
            continue
        if check.ok:
            cand.note = "auto: preferred verified backend (not timed: deterministic replay)"
            return cand
        log.info("auto: %s/%s rejected: %s", kind, prec, check.reason)
    reference.note = "auto: eager fp32 (no other backend verified)"
    return reference
