"""Inference backends behind one interface (DESIGN §7): eager, ``torch.compile``, Torch-TensorRT,
and :func:`~evimae_stream.runtime.backends.select.select_backend` which picks one (``auto``)."""

from evimae_stream.runtime.backends.base import Backend, ModelInputs, VerifyResult, verify
from evimae_stream.runtime.backends.select import BACKENDS, PRECISIONS, select_backend

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "ModelInputs",
    "VerifyResult",
    "select_backend",
    "verify",
]
