"""A fine-tune recipe with a pretraining stage (``pretrain.epochs`` > 0): one ``train.py``
command masked-pretrains the recipe's model on the user's recordings, then fine-tunes from it.

The stage is a recipe of its own, derived from the fine-tune one: objective ``pretrain`` in the
same mode (``imu_only``: the IMU branch alone, :mod:`evimae_stream.model.imu_pretrain`), its run
under ``<run_dir>/pretrain``, the same IMU normalisation as the fine-tuning (the stage feeds the
same inputs), the same augmentations, every source but the test ones (test sessions stay unseen),
unlabelled windows kept, and the stage's epochs, learning rate and batch with warm-up and a
cosine schedule. The fine-tuning then starts from its ``pretrain_encoder.pt``.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

from training import checkpoint as ckpt
from training.config import TrainConfig
from training.typed_config import build


def pretrain_stage(cfg: TrainConfig) -> TrainConfig:
    """The pretraining recipe of fine-tune recipe ``cfg`` (see the module doc)."""
    doc = copy.deepcopy(cfg.to_dict())
    st = cfg.pretrain
    doc.update(objective="pretrain", run_dir=str(Path(cfg.run_dir) / "pretrain"), output=None)
    doc["pretrain"]["epochs"] = 0
    doc["imu"].update(norm="custom", norm_mean=cfg.imu.norm_mean, norm_std=cfg.imu.norm_std)
    doc["data"]["sources"] = [s for s in doc["data"]["sources"] if s["split"] != "test"]
    doc["train"].update(
        epochs=st.epochs,
        lr=st.lr,
        batch_size=st.batch_size,
        warmup_steps=st.warmup_steps,
        schedule="cosine",
        patience=0,
        max_steps_per_epoch=cfg.train.max_steps_per_epoch,
    )
    return build(TrainConfig, doc, "")


def finetune_from(cfg: TrainConfig, stage: TrainConfig) -> TrainConfig:
    """``cfg`` starting from the encoder the pretraining ``stage`` wrote."""
    path = Path(stage.run_dir) / ckpt.PRETRAIN_ENCODER
    return replace(
        cfg,
        model=replace(cfg.model, init="pretrain", init_path=str(path)),
        pretrain=replace(cfg.pretrain, epochs=0),
    )
