"""``torchrun`` distributed data parallel: process group set-up, rank helpers.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; without them training runs as a single
process. The backend is nccl on CUDA and gloo on CPU. Only rank 0 logs, checkpoints and writes
the artifact (:func:`is_main`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def setup(device: torch.device) -> DistInfo:
    """Join the process group when launched by ``torchrun``; a no-op otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    log.info("rank %d/%d joined (%s)", rank, world, backend)
    return DistInfo(rank, world, local)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0 or without a process group."""
    return not dist.is_initialized() or dist.get_rank() == 0


def all_reduce_mean(value: float, info: DistInfo, device: torch.device) -> float:
    """Mean of a scalar over ranks."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world


def gather_int(value: int, info: DistInfo, device: torch.device) -> list[int]:
    """``value`` of every rank, in rank order (so rank 0 can report what each rank did)."""
    if not info.enabled:
        return [value]
    out = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(info.world)]
    dist.all_gather(out, torch.tensor([value], dtype=torch.int64, device=device))
    return [int(t.item()) for t in out]
