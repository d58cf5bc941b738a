"""Training dataset: the runtime's preprocessing, augmentations only on the training split and
reproducible per (seed, epoch, window); the loss; precision checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.errors import InputError
from evimae_stream.preprocess import PreprocessConfig, frames_to_video_tensor, preprocess_imu
from tests.fixtures_sessions import coded_frame
from training.config import load_config
from training.data import WindowDataset
from training.losses import classification_loss, smooth_targets
from training.windows import FrameStore, WindowItem


def _dataset(train: bool, noise: float = 0.0) -> tuple[WindowDataset, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    store = FrameStore(max_side=256)
    frames = [coded_frame(i, 96, 64) for i in range(4)]
    keys = [store.add(f) for f in frames]
    items = [
        WindowItem(rng.normal(0, 0.5, (100, 12)).astype(np.float32), keys, ("b",), "s", 2.0),
        WindowItem(rng.normal(0, 0.5, (100, 12)).astype(np.float32), keys, ("a",), "s", 3.0),
    ]
    pcfg = PreprocessConfig(num_frames=4, img_size=32)
    ds = WindowDataset(
        items, store, ["a", "b"], pcfg, need_imu=True, need_video=True, train=train,
        crop_scales=(1.0, 0.875, 0.75, 0.66), imu_noise_std=noise, seed=3,
    )  # fmt: skip
    return ds, frames


def test_eval_items_are_exactly_the_runtime_preprocessing() -> None:
    ds, frames = _dataset(train=False, noise=0.05)
    item = ds[0]
    expect_imu = preprocess_imu(ds.items[0].imu, ds.pcfg)
    # the spectrogram cache is float16: within its rounding of the runtime's float32 values
    torch.testing.assert_close(item["imu"], expect_imu, atol=2e-3, rtol=1e-3)
    assert torch.equal(item["video"], frames_to_video_tensor(frames, 32))
    assert item["target"].tolist() == [0.0, 1.0] and int(item["label"]) == 1
    again = ds[0]
    assert torch.equal(item["imu"], again["imu"]) and torch.equal(item["video"], again["video"])


def test_train_augmentation_reproducible_per_epoch_and_off_at_eval() -> None:
    ds, frames = _dataset(train=True, noise=0.05)
    clean = frames_to_video_tensor(frames, 32)
    clean_imu = preprocess_imu(ds.items[0].imu, ds.pcfg)
    ds.set_epoch(0)
    a, b = ds[0], ds[0]
    assert torch.equal(a["video"], b["video"]) and torch.equal(a["imu"], b["imu"])
    assert not torch.allclose(a["imu"], clean_imu, atol=1e-2)  # noise before the spectrogram
    videos = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        videos.append(ds[0]["video"])
    assert any(not torch.equal(v, clean) for v in videos)  # some epoch crops
    assert any(not torch.equal(v, videos[0]) for v in videos[1:])  # crops vary by epoch


def test_label_smoothing_is_the_published_one() -> None:
    t = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    assert smooth_targets(t, 0.1)[0].tolist() == pytest.approx([0.025, 0.9, 0.025, 0.025])
    logits = torch.tensor([[0.0, 3.0, -1.0, 0.5]])
    manual = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([[0.025, 0.9, 0.025, 0.025]])
    )
    assert float(classification_loss(logits, t, "bce", 0.1)) == pytest.approx(float(manual))
    ce = classification_loss(logits, t, "ce", 0.0)
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, t.argmax(1))))


def test_fp16_needs_cuda(tmp_path: Path) -> None:
    from training.train import run

    cfg = load_config(
        None,
        ["data.sources=[{kind: synthetic}]", "train.precision=fp16", "train.device=cpu",
         f"run_dir={tmp_path}"],
    )  # fmt: skip
    with pytest.raises(InputError, match=r"train\.precision"):
        run(cfg)
