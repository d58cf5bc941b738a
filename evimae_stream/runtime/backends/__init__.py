"""Inference backends behind one interface (DESIGN §7): eager, ``torch.compile``, AOTInductor,
Torch-TensorRT, int8 on the CPU, each registered by name in
:data:`~evimae_stream.runtime.backends.base.BACKENDS` by its own module, and
:func:`~evimae_stream.runtime.backends.select.select_backend` which picks one (``auto``)."""

from evimae_stream.runtime.backends.base import (
    BACKENDS,
    Backend,
    ModelInputs,
    VerifyResult,
    register_backend,
    verify,
)
from evimae_stream.runtime.backends.select import (
    AUTO,
    PRECISIONS,
    backend_choices,
    check_backend_precision,
    select_backend,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "ModelInputs",
    "VerifyResult",
    "backend_choices",
    "check_backend_precision",
    "register_backend",
    "select_backend",
    "verify",
]
