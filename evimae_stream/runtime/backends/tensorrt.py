"""Torch-TensorRT: ``torch.export`` per mode → ``torch_tensorrt.dynamo.compile`` → saved engine,
cached per (model hash and config, GPU, TensorRT version, precision, mode), verified against eager.

API facts used (Torch-TensorRT 2.x docs, "Compiling Exported Programs with Torch-TensorRT" and
"Saving models compiled with Torch-TensorRT", docs.pytorch.org/TensorRT):

- ``exp = torch.export.export(module, args)`` gives an ``ExportedProgram`` (static shapes here:
  batch 1, one window size, one module per forward mode since the mode is Python control flow);
- ``trt_gm = torch_tensorrt.dynamo.compile(exp, inputs=[tensors], enabled_precisions={dtype})``
  returns a ``torch.fx.GraphModule`` (``enabled_precisions`` is deprecated in the newest releases
  in favour of ``use_explicit_typing``; it is passed only when the installed ``compile`` takes it);
- ``torch_tensorrt.save(trt_gm, path, output_format="exported_program", inputs=[tensors])``
  (``arg_inputs=`` in newer releases) writes it with ``torch.export.save``;
- ``torch_tensorrt.load(path)`` (or ``torch.export.load``) returns the ``ExportedProgram``;
  ``.module()`` is the callable.

The package is optional (``pip install evimae-stream[tensorrt]`` on a machine with NVIDIA's
index); without it this backend raises :class:`BackendUnavailable` and the runtime falls back.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import os
from pathlib import Path

import torch

from evimae_stream.runtime.backends.base import (
    DEFAULT_CACHE,
    DTYPES,
    BackendUnavailable,
    ModeModule,
    register_backend,
)
from evimae_stream.runtime.backends.cached import CachedBackend, tmp_path

log = logging.getLogger(__name__)


@register_backend
class TensorRTBackend(CachedBackend):
    """Compiled TensorRT engines, one per mode, loaded from the cache when present."""

    name = "tensorrt"
    auto_rank = 2
    cuda_precision = "fp16"

    @classmethod
    def offered_by_auto(cls, device: torch.device) -> bool:
        """On CUDA, when ``torch_tensorrt`` is installed."""
        return device.type == "cuda" and importlib.util.find_spec("torch_tensorrt") is not None

    def __init__(
        self,
        model,
        precision: str = "fp16",
        device: torch.device | None = None,
        model_id: str = "model",
        cache_dir: str | Path | None = None,
    ) -> None:
        device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE / self.name
        # fp16 is TensorRT's business (enabled_precisions), not autocast: skip the CUDA check
        super().__init__(model, "fp32", device, model_id, cache)
        if precision not in DTYPES:
            raise BackendUnavailable(f"unknown precision {precision!r}")
        self.precision = precision

    @staticmethod
    def _import():
        try:
            return importlib.import_module("torch_tensorrt")
        except ImportError as exc:
            raise BackendUnavailable(
                f"torch_tensorrt is not installed ({exc}); install evimae-stream[tensorrt] "
                "on a machine with an NVIDIA GPU"
            ) from None

    def _environment(self) -> tuple[str, ...]:
        """The GPU and the TensorRT version: an engine is built for both."""
        gpu = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return gpu, f"trt{getattr(self._import(), '__version__', 'unknown')}"

    def _load(self, path: Path):
        return self._import().load(str(path)).module()

    def _build(self, mode: str, args: tuple[torch.Tensor, ...], path: Path):
        trt = self._import()
        exported = self._export(ModeModule(self.model, mode), mode, args)
        kwargs: dict = {"inputs": list(args)}
        compile_fn = trt.dynamo.compile
        if _accepts(compile_fn, "enabled_precisions"):
            kwargs["enabled_precisions"] = {DTYPES[self.precision]}
        try:
            module = compile_fn(exported, **kwargs)
        except Exception as exc:
            raise BackendUnavailable(f"TensorRT compile of mode {mode} failed: {exc}") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(path)
        save_kwargs: dict = {"output_format": "exported_program"}
        save_kwargs["arg_inputs" if _names(trt.save, "arg_inputs") else "inputs"] = list(args)
        try:
            trt.save(module, str(tmp), **save_kwargs)
            os.replace(tmp, path)
            log.info("tensorrt: cached %s engine at %s", mode, path)
        except Exception as exc:  # a cache we cannot write costs a rebuild next time, no more
            log.warning("tensorrt: could not cache the %s engine at %s (%s)", mode, path, exc)
            tmp.unlink(missing_ok=True)
        return module


def _accepts(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _names(fn, name: str) -> bool:
    """Whether ``fn`` has a parameter called ``name`` (not merely ``**kwargs``)."""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
