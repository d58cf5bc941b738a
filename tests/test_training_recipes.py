"""The shipped recipes (configs/train/*.yaml) load their data the way train.py does, with only
the data paths pointed at small fixtures of each layout, and carry DESIGN §6's published
settings. The CMU-MMAC recipes also run a training step on the EVI-MAE release clip layout:
unlabelled release clips for pretraining, a validation split carved from the release's
training clips for fine-tuning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from evimae_stream.model import create_pretrain_model
from tests.helpers.sessions import build_cmummac, build_wear, write_session, write_video
from tests.helpers.training import MICRO, REPO
from training.config import TrainConfig, load_config
from training.data import DataBundle, preprocess_config
from training.prepare import encoder_config, load_recipe_data
from training.train import run

RECIPES = REPO / "configs" / "train"
CMU_CLASSES = ["crack egg", "stir the mix", "pour into pan"]
N_TRAIN, N_TEST = 10, 3


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cmu_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cmummac-release/`` in the EVI-MAE release layout: per split a ``labels_1.json`` of
    150×64 CMU-MMAC IMU clips with a head-camera clip each; the finetune entries carry key-step
    mids (one or two), the pretrain entries ``"0"`` (no label), as released."""
    tmp = tmp_path_factory.mktemp("release")
    clip_csv = build_cmummac(tmp / "cmu", rows=150).read_text()
    rel = tmp / "cmummac-release"
    (rel / "imu").mkdir(parents=True)
    (rel / "video").mkdir()
    (rel / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n"
        + "".join(f'{i},k{i},"{name}"\n' for i, name in enumerate(CMU_CLASSES))
    )
    for split, n in (("train", N_TRAIN), ("test", N_TEST)):
        for kind in ("finetune", "pretrain"):
            entries = []
            for k in range(n):
                clip = f"{split}_{kind}_{k:02d}"
                (rel / "imu" / f"{clip}.csv").write_text(clip_csv)
                write_video(rel / "video" / f"{clip}.mp4", 6, 30.0, "mp4v")
                label = "0" if kind == "pretrain" else f"k{k % 3}" + (",k2" if k == 4 else "")
                entries.append({"imu": f"imu/{clip}.csv", "label": label, "video_id": clip,
                                "frame_path": f"video/{clip}.mp4"})  # fmt: skip
            folder = rel / "cav_label" / f"{split}_{kind}"
            folder.mkdir(parents=True)
            (folder / "labels_1.json").write_text(json.dumps({"data": entries}))
    return rel


def recipe(name: str, *sets: str) -> TrainConfig:
    return load_config(RECIPES / f"{name}.yaml", list(sets))


def sources_at(cfg_name: str, path: Path) -> list[str]:
    """``--set`` items pointing every source of a recipe at ``path``."""
    n = len(recipe(cfg_name).data.sources)
    return [f"data.sources.{i}.path={path}" for i in range(n)]


def load(cfg: TrainConfig) -> DataBundle:
    return load_recipe_data(cfg, encoder_config(cfg))


def clip_ids(bundle: DataBundle, split: str) -> list[str]:
    return [it.source for it in bundle.splits[split]]


# ----------------------------------------------------------------------------- published settings

FINETUNE = {"optimizer": "adam", "lr": 5e-5, "head_lr_mult": 100.0, "batch_size": 16,
            "epochs": 200, "schedule": "multistep", "milestones": [60, 120, 180], "gamma": 0.5,
            "warmup_steps": 0, "accum_steps": 1, "loss": "bce", "label_smoothing": 0.1}  # fmt: skip
PRETRAIN = {"optimizer": "adam", "lr": 5e-5, "batch_size": 24, "epochs": 300,
            "schedule": "multistep", "milestones": [100, 200], "gamma": 0.5, "warmup_steps": 0,
            "accum_steps": 1}  # fmt: skip
#: dataset geometry and normalisation (DESIGN §5-§6): (rate, window, norm mean, norm std)
GEOMETRY = {"wear": (50.0, 5.0, -51.17, 26.19), "cmummac": (30.0, 5.0, -70.84, 23.44)}
#: the published pretraining normalised with its own pair (egs/release/pretrain_*.sh)
PRETRAIN_NORM = {"wear": (-54.33, 26.04), "cmummac": (-69.8, 23.5)}


@pytest.mark.parametrize(
    ("name", "dataset"),
    [("wear_finetune", "wear"), ("cmummac_finetune", "cmummac"), ("imu_only", "wear")],
)
def test_finetune_recipes_carry_the_published_recipe(name: str, dataset: str) -> None:
    cfg = recipe(name)
    assert cfg.objective == "finetune"
    assert {k: getattr(cfg.train, k) for k in FINETUNE} == FINETUNE
    rate, window, mean, std = GEOMETRY[dataset]
    assert (cfg.imu.rate_hz, cfg.imu.window_s, cfg.imu.norm_mean, cfg.imu.norm_std) == (
        rate, window, mean, std,
    )  # fmt: skip
    if cfg.model.mode != "imu_only":
        assert cfg.model.variant == "evimae_small" and cfg.model.overrides == {}
        # published: 16 frames, every 4th of 30 fps video
        assert cfg.video_span_s == pytest.approx(64 / 30, abs=0.01)


@pytest.mark.parametrize(("name", "dataset"), [("wear_pretrain", "wear"),
                                               ("cmummac_pretrain", "cmummac")])  # fmt: skip
def test_pretrain_recipes_carry_the_published_recipe(name: str, dataset: str) -> None:
    cfg = recipe(name)
    assert cfg.objective == "pretrain"
    assert {k: getattr(cfg.train, k) for k in PRETRAIN} == PRETRAIN
    rate, window, _, _ = GEOMETRY[dataset]
    assert (cfg.imu.rate_hz, cfg.imu.window_s) == (rate, window)
    # the pretraining pair, and it is what the training windows are normalised with
    assert (cfg.imu.norm_mean, cfg.imu.norm_std) == PRETRAIN_NORM[dataset]
    pcfg = preprocess_config(cfg, 16, 224)
    assert (pcfg.norm_mean, pcfg.norm_std) == PRETRAIN_NORM[dataset]
    # the same dataset fine-tuned keeps the fine-tuning pair
    ft = recipe(name, "objective=finetune")
    assert (ft.imu.norm_mean, ft.imu.norm_std) == GEOMETRY[dataset][2:]
    with torch.device("meta"):  # the model the recipe builds, without allocating its weights
        model = create_pretrain_model(cfg.model.variant, **cfg.model.overrides)
    p = model.pcfg
    assert (p.mask_ratio_imu, p.mask_ratio_video, p.mask_ratio_graph) == (0.75, 0.9, 0.5)
    assert (p.contrast_bidirectional, p.graph_detach_target) == (False, False)  # as published


# ----------------------------------------------------------------------------- release recipes


def test_cmummac_pretrain_recipe_uses_the_unlabelled_release_clips(cmu_release: Path) -> None:
    cfg = recipe("cmummac_pretrain", *sources_at("cmummac_pretrain", cmu_release))
    bundle = load(cfg)
    train, val = clip_ids(bundle, "train"), clip_ids(bundle, "val")
    every = {f"train_pretrain_{k:02d}" for k in range(N_TRAIN)}
    # every train_pretrain clip is used, unlabelled; validation is some of them, never test clips
    assert set(train) | set(val) == every and not set(train) & set(val)
    assert len(val) == round(N_TRAIN * cfg.data.val_fraction) and not bundle.splits["test"]
    assert {it.labels for s in ("train", "val") for it in bundle.splits[s]} == {("",)}
    assert all(it.imu.shape == (150, 12) and len(it.frames) == 16 for it in bundle.splits["train"])


def test_cmummac_finetune_recipe_carves_validation_from_the_release_train_clips(
    cmu_release: Path,
) -> None:
    sets = sources_at("cmummac_finetune", cmu_release)
    bundle = load(recipe("cmummac_finetune", *sets))
    train, val, test = (clip_ids(bundle, s) for s in ("train", "val", "test"))
    assert set(train) | set(val) == {f"train_finetune_{k:02d}" for k in range(N_TRAIN)}
    assert not set(train) & set(val)
    assert len(val) == round(N_TRAIN * 0.15) == 2
    assert test == [f"test_finetune_{k:02d}" for k in range(N_TEST)]
    assert bundle.classes == CMU_CLASSES
    both = next(it for it in bundle.splits["train"] + bundle.splits["val"]
                if it.source == "train_finetune_04")  # fmt: skip
    assert both.labels == ("stir the mix", "pour into pan")
    # seeded: the same seed carves the same clips, another seed others
    assert clip_ids(load(recipe("cmummac_finetune", *sets)), "val") == val
    assert clip_ids(load(recipe("cmummac_finetune", *sets, "seed=1")), "val") != val


@pytest.mark.parametrize("name", ["cmummac_pretrain", "cmummac_finetune"])
def test_cmummac_recipes_train_on_the_release_layout(
    name: str, cmu_release: Path, tmp_path: Path
) -> None:
    # the recipe as shipped (published optimiser, bf16, splits) with a micro model and one step
    cfg = recipe(
        name, *sources_at(name, cmu_release), f"run_dir={tmp_path / 'run'}", MICRO,
        "train.epochs=1", "train.max_steps_per_epoch=1", "train.device=cpu",
        "train.num_threads=1",
    )  # fmt: skip
    summary = run(cfg)
    if name == "cmummac_pretrain":
        assert Path(summary["pretrain_checkpoint"]).is_file()
        return
    metrics = summary["metrics"]
    assert metrics["val"]["windows"] == 2 and metrics["test"]["windows"] == N_TEST
    doc = json.loads((cfg.output_dir / "model.json").read_text())
    assert doc["classes"] == CMU_CLASSES
    (src,) = doc["training"]["data"]["sources"][:1]
    assert src["release_split"] == "train_finetune" and src["windows"] == {"train": 8, "val": 2}


# ----------------------------------------------------------------------------- session recipes


@pytest.fixture(scope="module")
def wear_subject(tmp_path_factory: pytest.TempPathFactory, wear_dir: Path) -> Path:
    """``sbj_0.csv`` from 12 s of the real excerpt, with a head-camera ``sbj_0.mp4`` beside it."""
    root = tmp_path_factory.mktemp("wear")
    csv_path = build_wear(root, wear_dir / "right_wrist_0_10.csv", rows=50 * 12)
    write_video(root / "sbj_0.mp4", 6 * 12, 6.0, "mp4v")
    return csv_path


@pytest.mark.parametrize("name", ["wear_finetune", "wear_pretrain"])
def test_wear_recipes_load_their_splits(name: str, wear_subject: Path) -> None:
    cfg = recipe(name, *sources_at(name, wear_subject))
    bundle = load(cfg)
    counts = bundle.counts()
    # 12 s: windows of 5 s end at 5..12 s, every stride, the first centred in a break
    assert counts["train"] > 0 and counts["val"] > 0
    assert counts["test"] > 0 if name == "wear_finetune" else counts["test"] == 0
    assert all(len(it.frames) == 16 for it in bundle.splits["train"])
    if name == "wear_finetune":
        assert bundle.classes == cfg.data.classes and len(bundle.classes) == 18
        assert {it.labels[0] for it in bundle.splits["train"]} == {"jogging (sidesteps)"}
    else:  # pretraining keeps the windows centred in the break too
        assert ("",) in {it.labels for it in bundle.splits["train"]}


def test_imu_only_recipe_loads_its_splits(tmp_path: Path) -> None:
    for i in range(3):
        write_session(tmp_path / "recordings" / f"s{i}", seconds=9.0)
    held_out = write_session(tmp_path / "s3", seconds=9.0)
    cfg = recipe("imu_only", f"data.sessions={tmp_path / 'recordings'}",
                 f"data.sources.0.path={held_out}", "data.sources.0.split=test")  # fmt: skip
    bundle = load(cfg)
    # a 9 s session (last sample at 8.98 s): 5 s windows ending every 1 s from 5 s for
    # training (5, 6, 7, 8 s), every 2.5 s for evaluation (5, 7.5 s); one of the three
    # recordings validates (they name no subject: split by session)
    assert bundle.counts() == {"train": 8, "val": 2, "test": 2}
    assert bundle.split["by"] == "session" and len(bundle.split["val"]) == 1
    assert all(it.frames is None and it.imu.shape == (250, 12) for it in bundle.splits["train"])
    # the left-arm IMU feeds the missing right arm, the right-leg IMU the left leg
    assert {it.filled for it in bundle.splits["train"]} == {("right_arm", "left_leg")}
