"""The small-real-data recipe with masked pretraining (configs/train/small_real_mae.yaml): the
IMU-branch masked pretraining model, the pretraining stage derived from a fine-tune recipe, and
the whole recipe end to end on a folder of sessions cut from the real WEAR excerpt, at a tiny
budget."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.artifact import load_artifact
from evimae_stream.model import create_imu_pretrain_model, create_model
from evimae_stream.sessions import ImuSpec, SessionWriter
from tests.helpers.paths import REPO
from tests.helpers.sessions import read_wear_excerpt
from training import checkpoint as ckpt
from training.config import load_config
from training.stages import finetune_from, pretrain_stage
from training.train import run

RECIPE = REPO / "configs" / "train" / "small_real_mae.yaml"
WEAR = REPO.parent / "shared" / "data" / "wear" / "right_wrist_0_10.csv"
TINY = (
    "model.overrides={imu_embed_dim: 32, imu_heads: 1, imu_depth: 1, graph_hidden: 16, "
    "video_embed_dim: 16, video_heads: 1, "
    "decoder_embed_dim: 16, decoder_heads: 1, decoder_depth: 1}"
)


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_imu_pretraining_learns_the_encoder_the_finetune_model_loads() -> None:
    torch.manual_seed(0)
    model = create_imu_pretrain_model(
        "evimae_tiny", imu_embed_dim=32, imu_heads=1, imu_depth=1, video_embed_dim=16, video_heads=1
    )
    imu = torch.randn(2, 12, 320, 128)
    out = model(imu, generator=torch.Generator().manual_seed(1))
    assert set(out) == {"loss", "loss_imu", "loss_graph"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.patch_embed_a.proj.weight.grad is not None
    with pytest.raises(ValueError, match="no video"):
        model(imu, torch.zeros(2, 3, 8, 112, 112))
    ft = create_model(
        "evimae_tiny",
        3,
        imu_embed_dim=32,
        imu_heads=1,
        imu_depth=1,
        video_embed_dim=16,
        video_heads=1,
    )
    report = ckpt.load_encoder_weights(ft, model.state_dict(), "imu pretrain")
    assert report.startswith("imu pretrain: loaded")
    assert torch.equal(
        ft.state_dict()["patch_embed_a.proj.weight"],
        model.state_dict()["patch_embed_a.proj.weight"],
    )


def test_the_stage_is_derived_from_the_finetune_recipe(tmp_path: Path) -> None:
    cfg = load_config(
        RECIPE,
        [
            f"run_dir={tmp_path}",
            f"data.sessions={tmp_path}",
            f"data.sources.0.path={tmp_path}/held_out",
            "data.sources.0.split=test",
        ],
    )
    stage = pretrain_stage(cfg)
    assert stage.objective == "pretrain" and stage.model.mode == "imu_only"
    assert stage.train.epochs == cfg.pretrain.epochs and stage.pretrain.epochs == 0
    # the stage feeds the fine-tuning's inputs, never its test sessions
    assert (stage.imu.norm_mean, stage.imu.norm_std) == (cfg.imu.norm_mean, cfg.imu.norm_std)
    assert stage.data.sources == [] and stage.data.sessions == [str(tmp_path)]
    ft = finetune_from(cfg, stage)
    assert ft.model.init == "pretrain" and ft.model.init_path.endswith("pretrain_encoder.pt")


def wear_sessions(root: Path) -> tuple[Path, Path]:
    """Train and test folders of 20 s sessions cut from the real WEAR excerpt: the first
    60 s of each of its first two activities, as one session per 20 s, two named people."""
    _, acc, labels = read_wear_excerpt(WEAR)
    out = {"train": root / "train", "test": root / "test"}
    runs: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        if lab:
            runs.setdefault(lab, []).append(i)
    for name in sorted(runs)[:2]:
        idx = runs[name][: 50 * 60]
        for k in range(0, len(idx) - 999, 1000):
            part = acc[idx[k : k + 1000]]
            split = "test" if k // 1000 == 2 else "train"
            path = out[split] / f"{name.replace(' ', '_')}_{k // 1000}"
            with SessionWriter(
                path,
                imu={"right_arm": ImuSpec(50.0)},
                t0_ns=10**9,
                meta={"subject": f"p{k // 1000 % 2}"},
                wall_start="fixed",
            ) as w:
                w.add_imu_block("right_arm", 10**9 + np.arange(1000) * 20_000_000, part)
                w.add_label(0.0, 20.0, name)
    return out["train"], out["test"]


@pytest.mark.slow
def test_recipe_pretrains_then_finetunes_in_one_run(tmp_path: Path) -> None:
    train_dir, test_dir = wear_sessions(tmp_path / "data")
    cfg = load_config(
        RECIPE,
        [
            f"run_dir={tmp_path / 'run'}",
            f"data.sessions={train_dir}",
            TINY,
            f"data.sources=[{{kind: directory, path: {test_dir}, split: test}}]",
            "data.stride_s=2.5",
            "pretrain.epochs=1",
            "train.epochs=2",
            "train.num_threads=1",
            "train.max_steps_per_epoch=1",
            "pretrain.batch_size=8",
            "train.batch_size=8",
        ],
    )
    out = run(cfg)
    assert Path(out["pretrain"]["pretrain_checkpoint"]).is_file()
    _, meta = load_artifact(out["artifact"])
    assert "pretrain_encoder.pt" in meta.training["init"]
    data = meta.training["data"]
    assert data["split"]["by"] == "subject" and data["imu_channels"]["read"] == ["ax", "ay", "az"]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["split"]["by"] == "subject" and results["test"]["windows"] > 0
