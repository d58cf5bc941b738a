"""Pick and prepare the backend: ``--backend auto|eager|compile|aot|tensorrt|int8``,
``--precision``.

Every candidate other than eager fp32 is prepared on a real window and verified against eager
fp32 (:func:`~evimae_stream.runtime.backends.base.verify`); the check (top-1 agreement, max
|Δlogit| and |Δprobability|) stays on the backend for the run's summary. An explicitly requested
backend that fails (not installed, compile error, drift) falls back to eager fp32 with ONE
warning line naming the reason. ``auto`` tries, in order: eager fp32 (the reference); on a CPU
with native bf16 (AMX or AVX512-BF16) eager bf16; on CUDA eager fp16, ``torch.compile`` fp16 and
TensorRT fp16 when ``torch_tensorrt`` is installed; with ``--precision P`` every backend it
offers that runs P (``int8``: the int8 backend, which ``auto`` never picks unasked); it times a
few forwards of each candidate that passed and keeps the fastest. (``torch.compile`` on a CPU
costs tens of seconds of start-up for little gain on a small model, so ``auto`` leaves it to an
explicit ``--backend compile`` there, and the AOTInductor package, which takes as long to build
the first time, to ``--backend aot``.) With ``timed=False`` (``--speed max``, whose output must
not depend on timing noise) ``auto`` keeps the last candidate in that order that passes its
check instead: TensorRT, then ``torch.compile``, then eager in low precision (bf16 only on AMX,
where it is measured faster; AVX512-BF16 alone has not always paid off), then eager fp32 — the
usual order of speed, decided without a clock.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from evimae_stream.device import (
    check_precision_device,
    cpu_has_amx,
    cpu_has_native_bf16,
    default_device,
)
from evimae_stream.errors import InputError
from evimae_stream.runtime.backends.base import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    ModelInputs,
    precision_refusal,
    verify,
)
from evimae_stream.runtime.backends.eager import EagerBackend

log = logging.getLogger(__name__)

#: what ``auto`` is called: not a backend, the choice among them
AUTO = "auto"
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")


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


def check_backend_precision(name: str, precision: str | None) -> None:
    """InputError for an unknown ``--backend`` or ``--precision``, or a backend that does not
    run that precision (``--backend eager --precision int8``)."""
    cls = BACKENDS.get_or_fail(name, "--backend") if name != AUTO else None
    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"--precision: unknown {precision!r}; use one of {', '.join(PRECISIONS)}")
    if cls is not None and precision is not None and precision not in cls.precisions:
        raise InputError(precision_refusal(cls, precision))


def default_precision(cls: type[Backend], device: torch.device) -> str:
    """What ``--backend NAME`` without ``--precision`` runs: its CUDA precision on CUDA, else
    the first it runs (fp32 for all but int8)."""
    if device.type == "cuda" and cls.cuda_precision in cls.precisions:
        return cls.cuda_precision
    return cls.precisions[0]


def _make(kind: str, precision: str, model: nn.Module, device, model_id, cache_dir) -> Backend:
    return BACKENDS[kind].create(model, precision, device, model_id, cache_dir)


def _candidates(
    precision: str | None, device: torch.device, timed: bool = True
) -> list[tuple[str, str]]:
    """``auto``'s (backend, precision) pairs in rising preference: every backend it offers on
    ``device`` (by ``auto_rank``) in ``precision``, or without one in the low precision that
    runs fast there (bf16 on a CPU only with native bf16, and untimed only with AMX, where it is
    measured faster); eager fp32 is the reference, not a candidate."""
    if precision:
        precs = [precision]
    elif device.type == "cuda":
        precs = ["fp16"]
    else:
        native = cpu_has_amx() if not timed else cpu_has_native_bf16()
        precs = ["bf16"] if native else []
    offered = sorted(
        (cls for cls in BACKENDS.values() if cls.offered_by_auto(device)),
        key=lambda cls: cls.auto_rank,
    )
    return [
        (cls.name, p)
        for cls in offered
        for p in precs
        if p in cls.precisions and not (cls is EagerBackend and p == "fp32")
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
    check_backend_precision(name, precision)
    device = device or default_device()
    check_precision_device(precision, device)
    example = complete_example(example, model)
    reference = EagerBackend(model, "fp32", device)
    if BACKENDS.get(name) is EagerBackend and precision in (None, "fp32"):
        return reference
    if name != AUTO:
        wanted = precision or default_precision(BACKENDS[name], device)
        try:
            backend = _make(name, wanted, model, device, model_id, cache_dir)
            backend.prepare(example, modes)
            check = verify(backend, reference, example, modes)
        except (BackendUnavailable, RuntimeError, ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            if check.ok:
                log.info(
                    "backend %s verified (max |Δlogit| %.3g, |Δp| %.3g)",
                    backend.label, check.max_abs_diff, check.max_abs_dprob,
                )  # fmt: skip
                backend.check = check
                return backend
            reason = check.reason
        log.warning("backend %s/%s not used: %s; falling back to eager fp32", name, wanted, reason)
        reference.note = f"fallback from {name}/{wanted}: {reason}"
        return reference
    if not timed:
        return _preferred(precision, model, example, modes, reference, device, model_id, cache_dir)
    primary = next(m for m in ("multimodal", "imu_only", "video_only") if m in modes)
    best, best_t = reference, reference.time_forward(example, primary)
    seen = [f"eager/fp32 {best_t * 1e3:.1f} ms"]
    for kind, prec in _candidates(precision, device):
        try:
            cand = _make(kind, prec, model, device, model_id, cache_dir)
            cand.prepare(example, modes)
            check = verify(cand, reference, example, modes)
            if not check.ok:
                seen.append(f"{kind}/{prec} rejected: {check.reason}")
                continue
            cand.check = check
            t = cand.time_forward(example, primary)
        except (BackendUnavailable, RuntimeError, ValueError, OSError, InputError) as exc:
            seen.append(f"{kind}/{prec} unavailable: {str(exc).splitlines()[0]}")
            continue
        seen.append(f"{kind}/{prec} {t * 1e3:.1f} ms")
        if t < best_t:
            best, best_t = cand, t
    log.info("auto: %s", "; ".join(seen))
    best.note = f"auto: fastest verified per {primary} forward ({'; '.join(seen)})"
    return best


def _preferred(
    precision, model, example, modes, reference: Backend, device, model_id, cache_dir
) -> Backend:
    """``auto`` without timing: the last candidate of :func:`_candidates` that verifies."""
    for kind, prec in reversed(_candidates(precision, device, timed=False)):
        try:
            cand = _make(kind, prec, model, device, model_id, cache_dir)
            cand.prepare(example, modes)
            check = verify(cand, reference, example, modes)
        except (BackendUnavailable, RuntimeError, ValueError, OSError, InputError) as exc:
            log.info("auto: %s/%s unavailable: %s", kind, prec, str(exc).splitlines()[0])
            continue
        if check.ok:
            cand.note = "auto: preferred verified backend (not timed: deterministic replay)"
            cand.check = check
            return cand
        log.info("auto: %s/%s rejected: %s", kind, prec, check.reason)
    reference.note = "auto: eager fp32 (no other backend verified)"
    return reference
