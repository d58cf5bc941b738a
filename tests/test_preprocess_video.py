"""Video transform (resize, ImageNet normalisation), frame picking, and PreprocessConfig."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from evimae_stream.errors import ArtifactError, InputError
from evimae_stream.preprocess import (
    NORM_STATS,
    PreprocessConfig,
    imu_window_to_model_input,
    preprocess_imu,
)
from evimae_stream.preprocess_video import (
    frame_indices_for_window,
    frames_to_video_batch,
    frames_to_video_tensor,
    preprocess_video,
)

# ImageNet statistics as published (VideoMAE / EVI-MAE data loaders).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _expected(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.array([(rgb[c] / 255.0 - MEAN[c]) / STD[c] for c in range(3)])


# ---------------------------------------------------------------- video transform


@pytest.mark.parametrize("rgb", [(0, 0, 0), (255, 255, 255), (10, 128, 250), (255, 0, 0)])
def test_constant_colour_maps_to_normalised_value(rgb: tuple[int, int, int]) -> None:
    frames = [np.full((90, 160, 3), rgb, dtype=np.uint8) for _ in range(4)]
    out = frames_to_video_tensor(frames)
    assert out.shape == (3, 4, 224, 224) and out.dtype == torch.float32
    want = _expected(rgb)
    for c in range(3):
        np.testing.assert_allclose(out[c].numpy(), want[c], rtol=0, atol=1e-6)


def test_resize_shape_and_mixed_frame_sizes() -> None:
    frames = [
        np.zeros((480, 640, 3), np.uint8),
        np.zeros((100, 100, 3), np.uint8),
        np.zeros((224, 224, 3), np.uint8),
    ]
    assert frames_to_video_tensor(frames, size=112).shape == (3, 3, 112, 112)
    assert frames_to_video_tensor(np.stack([frames[0]] * 5)).shape == (3, 5, 224, 224)


def test_frame_at_target_size_is_only_normalised() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    out = frames_to_video_tensor([frame], size=32)
    want = (frame.astype(np.float64) / 255.0 - np.array(MEAN)) / np.array(STD)  # (H, W, 3)
    np.testing.assert_allclose(out[:, 0].numpy(), want.transpose(2, 0, 1), rtol=0, atol=1e-6)


def test_resize_keeps_layout_left_right_and_top_bottom() -> None:
    frame = np.zeros((120, 200, 3), np.uint8)
    frame[:, 100:] = (255, 255, 255)  # right half white
    frame[:60, :100] = (255, 0, 0)  # top-left red
    out = frames_to_video_tensor([frame], size=64)[:, 0]  # (3, 64, 64)
    regions = {
        (255, 255, 255): out[:, 5:25, 40:60],  # right half
        (0, 0, 0): out[:, 40:60, 5:25],  # bottom-left
        (255, 0, 0): out[:, 5:25, 5:25],  # top-left
    }
    for rgb, region in regions.items():
        want = np.broadcast_to(_expected(rgb)[:, None, None], region.shape)
        np.testing.assert_allclose(region.numpy(), want, rtol=0, atol=1e-5)


def test_batched_equals_per_item() -> None:
    rng = np.random.default_rng(1)
    clips = rng.integers(0, 256, size=(2, 3, 48, 64, 3), dtype=np.uint8)
    batch = frames_to_video_batch(clips, size=40)
    assert batch.shape == (2, 3, 3, 40, 40)
    for b in range(2):
        assert torch.equal(batch[b], frames_to_video_tensor(clips[b], size=40))
    assert torch.equal(frames_to_video_batch(torch.from_numpy(clips), size=40), batch)


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([np.zeros((10, 10), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((10, 10, 4), np.uint8)], r"\(H, W, 3\)"),
        ([np.zeros((10, 10, 3), np.float32)], "uint8"),
        ([], "no frames"),
        (np.zeros((10, 10, 3), np.uint8), r"\(T, H, W, 3\)"),
    ],
)
def test_bad_frames_raise_input_error(frames: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        frames_to_video_tensor(frames)  # type: ignore[arg-type]


def test_bad_batch_raises_input_error() -> None:
    with pytest.raises(InputError, match=r"\(B, T, H, W, 3\)"):
        frames_to_video_batch(np.zeros((3, 10, 10, 3), np.uint8))
    ragged = [np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8)]
    with pytest.raises(InputError, match="different frame counts"):
        frames_to_video_batch(ragged)


# ---------------------------------------------------------------- frame picking


def test_published_clip_is_every_fourth_frame() -> None:
    assert frame_indices_for_window(64, 16) == list(range(0, 64, 4))
    assert frame_indices_for_window(16, 16) == list(range(16))


@pytest.mark.parametrize("available", [1, 5, 15, 17, 60, 121, 1000])
def test_picks_are_ordered_in_range_and_evenly_spread(available: int) -> None:
    picks = frame_indices_for_window(available, 16)
    assert len(picks) == 16 and picks[0] == 0
    assert all(0 <= p < available for p in picks)
    assert np.all(np.diff(picks) >= 0)
    if available >= 16:
        assert len(set(picks)) == 16
        gaps = np.diff(picks)
        assert gaps.max() - gaps.min() <= 1  # as even as whole frames allow
        assert picks[-1] >= available - available / 16 - 1  # reaches the end of the window


@pytest.mark.parametrize(("available", "count"), [(0, 16), (10, 0), (-1, 16)])
def test_frame_picking_rejects_nonpositive(available: int, count: int) -> None:
    with pytest.raises(InputError, match="positive integer"):
        frame_indices_for_window(available, count)


def test_preprocess_video_uses_the_picked_frames() -> None:
    # Frame i has grey level 3·i, so each output slice tells which frame it came from.
    frames = [np.full((20, 30, 3), 3 * i, np.uint8) for i in range(64)]
    cfg = PreprocessConfig(num_frames=16, img_size=24)
    out = preprocess_video(frames, cfg)
    assert out.shape == (3, 16, 24, 24)
    grey = (out[0, :, 0, 0].double() * STD[0] + MEAN[0]) * 255.0
    np.testing.assert_allclose(grey.numpy(), [3 * 4 * k for k in range(16)], atol=1e-3)


# ---------------------------------------------------------------- config


def test_config_defaults_are_the_published_settings() -> None:
    cfg = PreprocessConfig()
    assert (cfg.imu_src_rate, cfg.spec_time, cfg.spec_freq) == (100.0, 320, 128)
    assert (cfg.n_fft, cfg.win_length, cfg.num_frames, cfg.img_size) == (256, 24, 16, 224)
    assert (cfg.norm_mean, cfg.norm_std) == (-51.17, 26.19)


def test_config_round_trips_through_json() -> None:
    cfg = PreprocessConfig(norm_mean=-70.84, norm_std=23.44, num_frames=8, img_size=160)
    doc = json.loads(json.dumps(cfg.to_dict()))
    assert PreprocessConfig.from_dict(doc) == cfg
    assert PreprocessConfig.from_dict({}) == PreprocessConfig()


def test_config_from_dict_rejects_unknown_and_invalid_fields() -> None:
    with pytest.raises(ArtifactError, match=r"model\.json: unknown preprocess field\(s\) hop"):
        PreprocessConfig.from_dict({"hop": 2}, source="model.json")
    for bad in (
        {"norm_std": 0.0},
        {"spec_freq": 200},
        {"imu_src_rate": 99.5},
        {"win_length": 300},
        {"win_length": 1},
        {"num_frames": 0},
        {"img_size": 22.5},
        {"norm_mean": "x"},
    ):
        key = next(iter(bad))
        with pytest.raises(ArtifactError, match=f"m.json: invalid preprocess config: .*{key}"):
            PreprocessConfig.from_dict(bad, source="m.json")
    with pytest.raises(ArtifactError, match="JSON object"):
        PreprocessConfig.from_dict([1, 2], source="m.json")  # type: ignore[arg-type]


def test_preprocess_imu_uses_config_normalisation() -> None:
    x = np.random.default_rng(4).normal(size=(150, 12))
    cmu = NORM_STATS["cmummac"]
    cfg = PreprocessConfig(norm_mean=cmu.mean, norm_std=cmu.std)
    assert torch.equal(preprocess_imu(x, cfg), imu_window_to_model_input(x, cmu.mean, cmu.std))
