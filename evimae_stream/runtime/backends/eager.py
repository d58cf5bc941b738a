"""Eager PyTorch: the reference numerics (fp32), bf16 autocast on CPUs (fast with AMX), fp16
autocast on CUDA."""

from __future__ import annotations

import torch

from evimae_stream.runtime.backends.base import Backend


class EagerBackend(Backend):
    """The model as is, under autocast for bf16/fp16."""

    name = "eager"

    def __init__(self, model, precision: str = "fp32", device: torch.device | None = None) -> None:
        device = device or torch.device("cpu")
        super().__init__(model.to(device).eval(), precision, device)

    def _run(self, tensors: tuple[torch.Tensor, ...], mode: str) -> torch.Tensor:
        imu, video = _split(tensors, mode)
        with self._autocast():
            return self.model(imu, video, mode)


def _split(tensors: tuple[torch.Tensor, ...], mode: str):
    if mode == "multimodal":
        return tensors[0], tensors[1]
    if mode == "imu_only":
        return tensors[0], None
    return None, tensors[0]
