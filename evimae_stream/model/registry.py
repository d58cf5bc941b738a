"""Named model variants (timm-style registry).

``evimae_small`` — the published EVI-MAE fine-tune configuration: IMU encoder 768-d × 11 blocks
(12 heads), VideoMAE-S video encoder 384-d × 12 blocks (6 heads), one joint block, 16 frames at
224×224, IMU spectrograms 12 × 320 × 128, GIN graph 768 → 512 → 512. 103.5 M parameters for 18
classes, 446 state-dict tensors. Pretraining decoder 192-d × 8 blocks (3 heads).

``evimae_tiny`` — the same design sized for a 2-core CPU (one window's multimodal forward in
6.5 ms fp32 at 2 threads, 10 ms at 1, batch 1, on the 2-core AMX development VM; measured with
``bench/model_latency.py`` and ``bench/run_all.py``):

* IMU input unchanged (12 × 320 × 128, patch 16 → 160 tokens per IMU): the preprocessing and
  artifacts stay the same for both variants. Because the IMU path runs (n+1)·B = 5 sequences of
  160 tokens, it dominates the cost, so the IMU encoder is the narrowest part that still learns:
  128-d × 2 blocks, 2 heads (head dim 64, as in the published model).
* Video 8 frames at 112 × 112 (tubelet 2, patch 16 unchanged → 4 × 7 × 7 = 196 tokens instead of
  1568), 64-d × 4 blocks, 2 heads: the head-camera view of a whole-body exercise needs little
  resolution, and 8 frames over the 2 s window still show the motion cycle.
* IMU width = 2 × joint width (128 → 64 after pooling), as the design requires; one joint block.
* Graph hidden 128 (readout 128, head 64 + 128 = 192 wide); MLP ratio 4 as published.
* Pretraining decoder 64-d × 2 blocks, 2 heads.

``imu_patch_tiny`` / ``imu_patch_small`` — ours, not EVI-MAE
(:mod:`evimae_stream.model.patch_imu`): the time-domain window and its posture instead of the
spectrogram, IMU only, for small real data on a CPU; 64-d × 2 blocks and 128-d × 3 blocks,
acceleration only or with the gyroscope (``imu_channels`` 24; a recipe's ``model.gyro``). Their
pretraining model is IMU-only (:func:`create_imu_pretrain_model`: masked time patches,
:mod:`evimae_stream.model.patch_imu_pretrain`); they have no multimodal one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from torch import nn

from evimae_stream.model.config import EviMaeConfig, PretrainConfig
from evimae_stream.model.patch_imu import PatchImuConfig
from evimae_stream.types import ACC_AXES

#: variant name → (encoder config, pretraining config)
_VARIANTS: dict[str, Callable[[], tuple[EviMaeConfig, PretrainConfig]]] = {}
#: variant name → config of the time-domain IMU classifiers (ours, IMU-only pretraining)
_PATCH_VARIANTS: dict[str, Callable[[], PatchImuConfig]] = {
    "imu_patch_tiny": lambda: PatchImuConfig(embed_dim=64, depth=2, heads=2),
    "imu_patch_small": lambda: PatchImuConfig(embed_dim=128, depth=3, heads=4),
}


def register_model(fn: Callable[[], tuple[EviMaeConfig, PretrainConfig]]):
    """Decorator: register a variant under the function's name."""
    _VARIANTS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Registered variant names, sorted."""
    return sorted([*_VARIANTS, *_PATCH_VARIANTS])


@register_model
def evimae_small() -> tuple[EviMaeConfig, PretrainConfig]:
    """The published fine-tune configuration (see the module docstring)."""
    return EviMaeConfig(), PretrainConfig()


@register_model
def evimae_tiny() -> tuple[EviMaeConfig, PretrainConfig]:
    """The 2-core-CPU configuration (see the module docstring for the numbers and why)."""
    enc = EviMaeConfig(
        imu_embed_dim=128,
        imu_depth=2,
        imu_heads=2,
        video_embed_dim=64,
        video_depth=4,
        video_heads=2,
        joint_depth=1,
        num_frames=8,
        img_size=112,
        graph_hidden=128,
    )
    return enc, PretrainConfig(decoder_embed_dim=64, decoder_depth=2, decoder_heads=2)


def _variant(name: str) -> tuple[EviMaeConfig, PretrainConfig]:
    if name in _PATCH_VARIANTS:
        raise ValueError(
            f"variant {name!r} has no multimodal pretraining model (pretrain it in mode "
            "imu_only, or set pretrain.epochs: 0)"
        )
    if name not in _VARIANTS:
        raise KeyError(f"unknown model variant {name!r}; known: {', '.join(list_models())}")
    return _VARIANTS[name]()


def _split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    enc_fields = EviMaeConfig.__dataclass_fields__
    pre_fields = PretrainConfig.__dataclass_fields__
    unknown = sorted(k for k in overrides if k not in enc_fields and k not in pre_fields)
    if unknown:
        raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
    enc = {k: v for k, v in overrides.items() if k in enc_fields}
    pre = {k: v for k, v in overrides.items() if k in pre_fields}
    return enc, pre


def model_config(
    name: str, num_classes: int = 0, **overrides: Any
) -> EviMaeConfig | PatchImuConfig:
    """The encoder config of variant ``name`` with ``overrides`` applied (validated)."""
    if name in _PATCH_VARIANTS:
        base = _PATCH_VARIANTS[name]().to_dict()
        unknown = sorted(k for k in overrides if k not in base)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        return PatchImuConfig(**{**base, **overrides, "num_classes": num_classes})
    enc, pre = _split_overrides(overrides)
    if pre:
        raise ValueError(f"not fine-tune model fields: {', '.join(sorted(pre))}")
    base, _ = _variant(name)
    return replace(base, **{**enc, "num_classes": num_classes})


def pretrain_config(name: str, **overrides: Any) -> PretrainConfig:
    """The pretraining config of variant ``name`` with its ``overrides`` applied (validated);
    encoder fields among the overrides are ignored here."""
    _, pre = _split_overrides(overrides)
    _, base = _variant(name)
    return replace(base, **pre)


def imu_input_of(cfg: EviMaeConfig | PatchImuConfig) -> str:
    """The IMU input representation a model config reads (``ModelMeta.imu_input``)."""
    from evimae_stream.model.patch_imu import REPRESENTATION

    return REPRESENTATION if isinstance(cfg, PatchImuConfig) else "spectrogram"


def imu_channels_of(cfg: EviMaeConfig | PatchImuConfig) -> tuple[str, ...]:
    """The channels of each IMU slot a model config reads (``ModelMeta.imu_channels``)."""
    return cfg.channel_names if isinstance(cfg, PatchImuConfig) else ACC_AXES


def create_model(name: str, num_classes: int, **overrides: Any) -> nn.Module:
    """Build fine-tune variant ``name`` for ``num_classes`` classes, config fields overridden.

    Raises KeyError for an unknown variant and ValueError for an unknown or invalid field.
    """
    from evimae_stream.model.finetune import EviMae
    from evimae_stream.model.patch_imu import PatchImuNet

    cfg = model_config(name, num_classes, **overrides)
    return PatchImuNet(cfg) if isinstance(cfg, PatchImuConfig) else EviMae(cfg)


def create_pretrain_model(name: str, **overrides: Any) -> nn.Module:
    """Build the pretraining model of variant ``name``; overrides may name encoder fields
    (e.g. ``imu_depth``) or pretraining fields (e.g. ``mask_ratio_video``)."""
    from evimae_stream.model.pretrain import EviMaePretrain

    enc, pre = _split_overrides(overrides)
    enc.pop("num_classes", None)
    base_enc, base_pre = _variant(name)
    return EviMaePretrain(replace(base_enc, **enc, num_classes=0), replace(base_pre, **pre))


def create_imu_pretrain_model(name: str, **overrides: Any) -> nn.Module:
    """Build the IMU-branch pretraining model of variant ``name`` (no video; ours, see
    :mod:`evimae_stream.model.imu_pretrain`); overrides as :func:`create_pretrain_model`."""
    from evimae_stream.model.imu_pretrain import ImuMaePretrain

    if name in _PATCH_VARIANTS:
        return _patch_pretrain_model(name, overrides)
    enc, pre = _split_overrides(overrides)
    enc.pop("num_classes", None)
    base_enc, base_pre = _variant(name)
    return ImuMaePretrain(replace(base_enc, **enc, num_classes=0), replace(base_pre, **pre))


def _patch_pretrain_model(name: str, overrides: dict[str, Any]) -> nn.Module:
    """The masked time-patch pretraining model of ``imu_patch_*`` variant ``name``
    (:mod:`evimae_stream.model.patch_imu_pretrain`); overrides name encoder or decoder fields."""
    from evimae_stream.model.patch_imu_pretrain import PatchImuPretrain, PatchPretrainConfig

    dec_fields = PatchPretrainConfig.__dataclass_fields__
    dec = {k: v for k, v in overrides.items() if k in dec_fields}
    enc = {k: v for k, v in overrides.items() if k not in dec_fields and k != "num_classes"}
    return PatchImuPretrain(model_config(name, 0, **enc), PatchPretrainConfig(**dec))
