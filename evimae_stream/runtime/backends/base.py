"""The backend interface and registry, the model inputs it takes, and the check against eager fp32.

A backend turns one window's model inputs into logits for one forward mode. Every backend but
eager fp32 is checked at start against eager fp32 on a real window (:func:`verify`): the largest
absolute logit difference must stay within the precision's tolerance and the top-1 class must
agree, or the runtime does not use it.

Each backend registers its class once, by its ``name``, with :func:`register_backend` in the
module that defines it; :data:`BACKENDS` finds every module of this package, and ``--backend``'s
choices, its error text and ``auto``'s candidates come from it: a new backend is one new file.
"""

from __future__ import annotations

import logging
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from evimae_stream.device import check_precision_device
from evimae_stream.errors import InputError
from evimae_stream.registry import Registry

log = logging.getLogger(__name__)

#: max |Δlogit| allowed against eager fp32: absolute + relative to the largest reference logit
TOLERANCE: dict[str, tuple[float, float]] = {
    "fp32": (1e-3, 1e-3),
    "fp16": (5e-2, 2e-2),
    "bf16": (1e-1, 5e-2),
    "int8": (2e-1, 1e-1),
}

DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}

#: compiled-engine cache directory when none is given (``--engine-cache``)
DEFAULT_CACHE = Path(
    os.environ.get("EVIMAE_STREAM_CACHE", Path.home() / ".cache" / "evimae-stream")
)


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (package missing, no GPU, compile failed)."""


def cache_key(*parts: str) -> str:
    """A file-name-safe key for a compiled engine: the parts, slugged, joined by ``__``."""
    return "__".join(re.sub(r"[^A-Za-z0-9._]+", "-", p).strip("-") or "x" for p in parts)


@dataclass
class ModelInputs:
    """One window's model inputs, batch 1: IMU spectrograms ``(1, 12, 320, 128)`` and video
    ``(1, 3, T, S, S)``; either None when that modality is not used."""

    imu: torch.Tensor | None
    video: torch.Tensor | None

    def for_mode(self, mode: str) -> tuple[torch.Tensor, ...]:
        """The positional tensors the mode's forward takes."""
        if mode == "multimodal":
            tensors: tuple[torch.Tensor | None, ...] = (self.imu, self.video)
        elif mode == "imu_only":
            tensors = (self.imu,)
        else:
            tensors = (self.video,)
        if any(t is None for t in tensors):
            raise ValueError(f"mode {mode}: the inputs lack a modality it needs")
        return tensors  # type: ignore[return-value]

    @classmethod
    def from_mode(cls, mode: str, tensors: tuple[torch.Tensor, ...]) -> ModelInputs:
        """The inputs from the positional tensors of ``mode``'s forward (:meth:`for_mode`'s
        inverse)."""
        if mode == "multimodal":
            return cls(tensors[0], tensors[1])
        if mode == "imu_only":
            return cls(tensors[0], None)
        return cls(None, tensors[0])

    def supports(self, mode: str) -> bool:
        """Whether these inputs hold what ``mode`` needs."""
        if mode == "multimodal":
            return self.imu is not None and self.video is not None
        return (self.imu if mode == "imu_only" else self.video) is not None


class ModeModule(nn.Module):
    """The model with its mode fixed, taking only the tensors that mode uses (for export)."""

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        self.model = model
        self.mode = mode

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        inputs = ModelInputs.from_mode(self.mode, xs)
        return self.model(inputs.imu, inputs.video, self.mode)


class Backend(ABC):
    """Runs the model for one window. ``prepare`` once (compile, export, warm up), then
    ``forward`` per window; logits come back float32 on the CPU, shape (1, classes).

    ``name`` is what ``--backend`` calls it; ``auto_rank`` places it among ``auto``'s candidates
    (None: ``auto`` never tries it; higher: preferred when ``auto`` does not time them);
    ``precisions``: the ``--precision`` values it runs (the first: what an explicit request
    without ``--precision`` gets on a CPU); ``cuda_precision`` is what it gets on CUDA.
    """

    name = ""
    auto_rank: int | None = None
    precisions: tuple[str, ...] = ("fp32", "bf16", "fp16")
    cuda_precision = "fp32"

    @classmethod
    def create(
        cls, model: nn.Module, precision: str, device: torch.device, model_id: str, cache_dir
    ) -> Backend:
        """A backend of this class (``model_id`` and ``cache_dir`` matter to cached ones)."""
        del model_id, cache_dir
        return cls(model, precision, device)

    @classmethod
    def offered_by_auto(cls, device: torch.device) -> bool:
        """Whether ``auto`` tries this backend on ``device`` (default: whenever it has a rank)."""
        del device
        return cls.auto_rank is not None

    def __init__(self, model: nn.Module, precision: str, device: torch.device) -> None:
        if precision not in self.precisions:
            raise InputError(precision_refusal(type(self), precision))
        check_precision_device(precision, device)
        self.model = model
        self.precision = precision
        self.device = device
        self.note = ""  # why this backend is what it is (fallbacks), for the summary
        self.check: VerifyResult | None = None  # its check against eager fp32, once verified

    @property
    def label(self) -> str:
        """``name/precision/device`` for logs and the summary."""
        return f"{self.name}/{self.precision}/{self.device.type}"

    def prepare(self, example: ModelInputs, modes: tuple[str, ...]) -> None:  # noqa: B027
        """Get ready for ``modes`` using a real window (default: nothing to do)."""

    @abstractmethod
    def _run(self, tensors: tuple[torch.Tensor, ...], mode: str) -> torch.Tensor:
        """Logits for tensors already on the device."""

    def forward(self, inputs: ModelInputs, mode: str) -> torch.Tensor:
        """Logits ``(1, classes)`` float32 on the CPU for ``mode``."""
        # contiguous: a compiled graph may assume the strides it was built with (an AOT package
        # reads its inputs with them, unchecked), and the spectrogram can come out as a view
        tensors = tuple(
            t.to(self.device, non_blocking=True).contiguous() for t in inputs.for_mode(mode)
        )
        with torch.inference_mode():
            out = self._run(tensors, mode)
        return out.detach().float().cpu()

    def _autocast(self):
        if self.precision == "fp32":
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=DTYPES[self.precision])

    def time_forward(self, inputs: ModelInputs, mode: str, repeats: int = 3) -> float:
        """Median seconds of ``repeats`` forwards after one warm-up."""
        self.forward(inputs, mode)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            self.forward(inputs, mode)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]


def precision_refusal(cls: type[Backend], precision: str) -> str:
    """The line that refuses ``--precision precision`` on backend ``cls``."""
    return (
        f"--precision {precision}: --backend {cls.name} runs {', '.join(cls.precisions)}; "
        "use --backend auto (it finds the backend that runs it)"
    )


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`: worst logit and probability (softmax) differences, top-1
    agreement, and why not ok."""

    ok: bool
    max_abs_diff: float
    top1_agree: bool
    reason: str
    max_abs_dprob: float = float("inf")

    def summary(self) -> dict:
        """What the run's summary says about the check."""
        return {
            "top1_agree": self.top1_agree,
            "max_abs_dlogit": round(self.max_abs_diff, 6),
            "max_abs_dprob": round(self.max_abs_dprob, 6),
        }


def verify(
    candidate: Backend, reference: Backend, example: ModelInputs, modes: tuple[str, ...]
) -> VerifyResult:
    """Compare ``candidate`` with eager fp32 ``reference`` on ``example`` for every mode the
    example supports; tolerance by the candidate's precision (:data:`TOLERANCE`)."""
    atol, rtol = TOLERANCE[candidate.precision]
    worst, worst_p, agree = 0.0, 0.0, True
    for mode in modes:
        if not example.supports(mode):
            continue
        ref = reference.forward(example, mode)
        got = candidate.forward(example, mode)
        if got.shape != ref.shape or not torch.isfinite(got).all():
            return VerifyResult(
                False,
                float("inf"),
                False,
                f"{mode}: output {tuple(got.shape)} "
                f"non-finite or not the reference shape {tuple(ref.shape)}",
            )
        diff = float((got - ref).abs().max())
        dprob = float((got.softmax(-1) - ref.softmax(-1)).abs().max())
        limit = atol + rtol * float(ref.abs().max())
        same = bool((got.argmax(-1) == ref.argmax(-1)).all())
        worst, worst_p, agree = max(worst, diff), max(worst_p, dprob), agree and same
        if diff > limit or not same:
            why = f"max |Δlogit| {diff:.3g} > {limit:.3g}" if diff > limit else "top-1 differs"
            return VerifyResult(
                False, worst, agree, f"{mode}: drifts from eager fp32 ({why})", worst_p
            )
    return VerifyResult(True, worst, agree, "", worst_p)


#: backend name -> its class (each module of this package registers its own)
BACKENDS: Registry[type[Backend]] = Registry("backend", "evimae_stream.runtime.backends")


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Class decorator: add a backend to :data:`BACKENDS` under its ``name``."""
    BACKENDS.register(cls.name, cls)
    return cls
