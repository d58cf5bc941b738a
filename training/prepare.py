"""Everything a training run sets up before its first step: device and precision, the recipe's
windows and loaders, the model with its initial weights.

The order of the seeded operations (global seed, data, loaders, model seed, model, weights) is
part of the resume contract: a resumed run rebuilds the same objects before restoring the RNG
states of its checkpoint.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from evimae_stream.device import cpu_has_amx
from evimae_stream.errors import InputError
from evimae_stream.model import (
    EviMaeConfig,
    PretrainConfig,
    create_imu_pretrain_model,
    create_model,
    create_pretrain_model,
    imu_channels_of,
    imu_input_of,
    model_config,
    pretrain_config,
)
from evimae_stream.model.patch_imu import PatchImuConfig
from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.types import MODES
from training import checkpoint as ckpt
from training import ddp
from training.augment import ImuAugment
from training.config import TrainConfig
from training.data import (
    DataBundle,
    WindowDataset,
    collate,
    ensure_synthetic,
    load_data,
    preprocess_config,
)
from training.motion_targets import MotionTargets, motion_spec

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """``train.device``: ``auto`` (CUDA when there is one) or a torch device name."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"config train.device: {name} requested but CUDA is not available")
    return dev


def auto_precision(device: torch.device) -> str:
    """What ``train.precision: auto`` means on ``device``: bf16 where it is fast (CUDA with bf16
    support, CPUs with AMX), fp16 on older GPUs, else fp32 (bf16 without AMX is emulated: slow)."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_amx() else "fp32"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def modalities(cfg: TrainConfig) -> tuple[bool, bool]:
    """(needs IMU, needs video) for the objective and mode."""
    if cfg.objective == "pretrain":
        return True, cfg.model.mode != "imu_only"  # imu_only: the IMU branch alone
    if cfg.model.modality_dropout > 0:
        return True, True
    if cfg.objective == "align":  # the IMU side is always aligned; video when it has a weight
        return True, cfg.align.video_weight > 0 or cfg.model.mode != "imu_only"
    return cfg.model.mode != "video_only", cfg.model.mode != "imu_only"


def trained_modes(cfg: TrainConfig) -> list[str]:
    """Modes the fine-tuned model was trained (and is declared) for."""
    return list(MODES) if cfg.model.modality_dropout > 0 else [cfg.model.mode]


def encoder_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``model.overrides`` minus the pretraining-only (decoder/masking) fields, so one recipe's
    overrides serve both objectives."""
    return {k: v for k, v in overrides.items() if k not in PretrainConfig.__dataclass_fields__}


def encoder_config(cfg: TrainConfig) -> EviMaeConfig | PatchImuConfig:
    """The encoder shape of the recipe's model (frame count and size the data is cut for)."""
    try:
        return model_config(cfg.model.variant, 1, **encoder_overrides(cfg.model.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None


def load_recipe_data(cfg: TrainConfig, mcfg: EviMaeConfig | PatchImuConfig) -> DataBundle:
    """The windows of the recipe's sources as a run loads them: the modalities its objective and
    mode need, unlabelled windows kept for pretraining, frames at the model's input size."""
    need_imu, need_video = modalities(cfg)
    return load_data(
        cfg, mcfg.num_frames, need_imu, need_video, labelled=cfg.objective != "pretrain",
        img_size=mcfg.img_size, channels=imu_channels_of(mcfg),
    )  # fmt: skip


def build_model(cfg: TrainConfig, num_classes: int) -> nn.Module:
    m = cfg.model
    try:
        if cfg.objective == "pretrain" and m.mode == "imu_only":
            return create_imu_pretrain_model(m.variant, **m.overrides)
        if cfg.objective == "pretrain":
            return create_pretrain_model(m.variant, **m.overrides)
        return create_model(m.variant, num_classes, **encoder_overrides(m.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None


def init_weights(model: nn.Module, cfg: TrainConfig) -> str | None:
    """Load ``model.init`` weights; returns the report line (None from scratch)."""
    m = cfg.model
    if m.init == "scratch":
        return None
    path = Path(m.init_path)
    if not (path / "model.safetensors" if m.init == "artifact" else path).is_file():
        raise InputError(f"{path}: model.init_path not found (model.init={m.init})")
    if m.init == "official":
        from evimae_stream.model.checkpoint import read_checkpoint

        state = read_checkpoint(path)
    elif m.init == "artifact":
        from safetensors.torch import load_file

        state = load_file(str(path / "model.safetensors"))
    else:
        state = ckpt.load(path).get("model", {})
    return ckpt.load_encoder_weights(model, state, str(path))


def motion_targets(cfg: TrainConfig) -> MotionTargets | None:
    """The motion-trajectory targets a pretraining recipe's ``video_target`` asks for."""
    if cfg.objective != "pretrain" or cfg.model.mode == "imu_only":
        return None
    m = cfg.model
    try:
        spec = motion_spec(encoder_config(cfg), pretrain_config(m.variant, **m.overrides))
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"config model.overrides: {exc}") from None
    return MotionTargets(spec) if spec is not None else None


def imu_augment(cfg: TrainConfig) -> ImuAugment:
    """The recipe's wearable augmentations (:class:`training.augment.ImuAugment`)."""
    a = cfg.augment
    return ImuAugment(a.imu_yaw_deg, a.imu_tilt_deg, a.imu_gain, a.imu_time_warp, a.imu_shift_s,
                      a.imu_dropout, cfg.imu.rate_hz)  # fmt: skip


@dataclass
class Loaders:
    """The training loader (and its sampler and dataset) and the evaluation loaders by split."""

    train_ds: WindowDataset
    train: DataLoader
    sampler: DistributedSampler
    evals: dict[str, DataLoader]


def epoch_repeats(windows: int, min_windows: int) -> int:
    """How many times an epoch visits each of ``windows`` training windows to see at least
    ``min_windows`` (1 when it already does, or when the floor is off)."""
    return max(1, math.ceil(min_windows / windows)) if windows and min_windows else 1


def make_loaders(
    bundle: DataBundle, cfg: TrainConfig, info: ddp.DistInfo, pcfg: PreprocessConfig
) -> Loaders:
    """Datasets and loaders of every split, spectrograms computed once up front."""
    need_imu, need_video = modalities(cfg)
    common = {"need_imu": need_imu, "need_video": need_video, "motion": motion_targets(cfg)}
    train_ds = WindowDataset(
        bundle.splits["train"], bundle.store, bundle.classes, pcfg, train=True,
        crop_scales=tuple(cfg.augment.crop_scales), imu_noise_std=cfg.augment.imu_noise_std,
        imu_augment=imu_augment(cfg), seed=cfg.seed, **common,
        repeat=epoch_repeats(len(bundle.splits["train"]), cfg.train.min_windows_per_epoch),
    )  # fmt: skip
    sampler = DistributedSampler(
        train_ds, num_replicas=info.world, rank=info.rank, shuffle=True, seed=cfg.seed
    )
    train = DataLoader(
        train_ds, batch_size=cfg.train.batch_size, sampler=sampler, collate_fn=collate,
        num_workers=cfg.train.num_workers,
    )  # fmt: skip
    evals = {}
    for split in ("val", "test"):
        if bundle.splits[split]:
            ds = WindowDataset(bundle.splits[split], bundle.store, bundle.classes, pcfg, **common)
            evals[split] = DataLoader(
                ds, batch_size=cfg.train.batch_size, shuffle=False, collate_fn=collate
            )
    t0 = time.perf_counter()
    for ds in [train_ds] + [ld.dataset for ld in evals.values()]:
        ds.warm_cache()
    if info.main:
        log.info("spectrogram cache ready in %.1f s", time.perf_counter() - t0)
        if train_ds.motion is not None:
            print(train_ds.motion.report(), flush=True)
    return Loaders(train_ds, train, sampler, evals)


def prepare_data(
    cfg: TrainConfig,
    mcfg: EviMaeConfig | PatchImuConfig,
    info: ddp.DistInfo,
    bundle: DataBundle | None,
) -> DataBundle:
    """The run's windows (rank 0 generates synthetic sessions once; the others wait and read
    them)."""
    if bundle is None:
        if info.main:
            for src in cfg.data.sources:
                if src.kind == "synthetic":
                    ensure_synthetic(cfg, src)
        ddp.barrier(info)
        bundle = load_recipe_data(cfg, mcfg)
    if info.main:
        mb = bundle.store.nbytes / 1e6
        log.info(
            "windows %s, %d cached frames (%.0f MB)", bundle.counts(), len(bundle.store.frames), mb
        )
    if cfg.objective != "pretrain" and not bundle.splits["val"]:
        raise InputError(
            "no validation windows: add a source with split: val or set data.val_fraction > 0"
        )
    return bundle


@dataclass
class Prepared:
    """What the loop runs on: windows, loaders, the model (``core``; ``model`` is its DDP wrapper
    or itself) and how its weights were initialised."""

    bundle: DataBundle
    pcfg: PreprocessConfig
    loaders: Loaders
    core: nn.Module
    model: nn.Module
    init_report: str | None
    steps_per_epoch: int
    #: the ``align`` objective's text side and loss (:class:`training.align.AlignObjective`)
    align: Any = None


def prepare(
    cfg: TrainConfig, device: torch.device, info: ddp.DistInfo, bundle: DataBundle | None
) -> Prepared:
    """Seed, windows, loaders and the initialised model of a run (see the module doc)."""
    seed_everything(cfg.seed)
    mcfg = encoder_config(cfg)
    bundle = prepare_data(cfg, mcfg, info, bundle)
    pcfg = preprocess_config(cfg, mcfg.num_frames, mcfg.img_size, imu_input_of(mcfg))
    loaders = make_loaders(bundle, cfg, info, pcfg)
    align = None
    if cfg.objective == "align":
        from training.align import AlignObjective

        if info.enabled:
            raise InputError("objective align runs in one process; start it without torchrun")
        align = AlignObjective(cfg, bundle, device)
    torch.manual_seed(cfg.seed)
    core = build_model(cfg, len(bundle.classes))
    if align is not None:
        align.attach(core)
    core = core.to(device)
    init_report = init_weights(core, cfg) if cfg.objective != "pretrain" else None
    model = core
    if info.enabled:
        model = nn.parallel.DistributedDataParallel(
            core,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    t = cfg.train
    steps = max(1, math.ceil(len(loaders.train) / t.accum_steps))
    if t.max_steps_per_epoch:
        steps = min(steps, t.max_steps_per_epoch)
    return Prepared(bundle, pcfg, loaders, core, model, init_report, steps, align)
