"""EVI-MAE in plain PyTorch: the published fine-tune and pretraining models, and small variants.

Public API::

    create_model(name, num_classes, **overrides)   # "evimae_small" (published) / "evimae_tiny"
    create_pretrain_model(name, **overrides)
    load_official_checkpoint(path, num_classes=None)
    model(imu, video, mode) -> logits               # mode: multimodal | imu_only | video_only
    model.cfg                                       # EviMaeConfig (to_dict / from_dict)
"""

from evimae_stream.model.checkpoint import checkpoint_filter_fn, load_official_checkpoint
from evimae_stream.model.config import EviMaeConfig, PretrainConfig
from evimae_stream.model.finetune import EviMae
from evimae_stream.model.pretrain import EviMaePretrain
from evimae_stream.model.registry import (
    create_imu_pretrain_model,
    create_model,
    create_pretrain_model,
    imu_channels_of,
    imu_input_of,
    list_models,
    model_config,
    pretrain_config,
    register_model,
)

__all__ = [
    "EviMae",
    "EviMaeConfig",
    "EviMaePretrain",
    "PretrainConfig",
    "checkpoint_filter_fn",
    "create_imu_pretrain_model",
    "create_model",
    "create_pretrain_model",
    "imu_channels_of",
    "imu_input_of",
    "list_models",
    "load_official_checkpoint",
    "model_config",
    "pretrain_config",
    "register_model",
]
