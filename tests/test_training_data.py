"""Training dataset: the runtime's preprocessing, augmentations only on the training split and
reproducible per (seed, epoch, window); the loss; precision checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evimae_stream.errors import InputError
from evimae_stream.preprocess import PreprocessConfig, preprocess_imu
from evimae_stream.preprocess_video import frames_to_video_tensor
from evimae_stream.window import WindowGeometry
from tests.helpers.sessions import coded_frame
from training.config import load_config
from training.data import WindowDataset
from training.losses import classification_loss, smooth_targets
from training.windows import FrameStore, WindowItem


def _dataset(train: bool, noise: float = 0.0) -> tuple[WindowDataset, list[np.ndarray]]:
    rng = np.random.default_rng(1)
    store = FrameStore(32)  # the model's input size, as load_data keeps frames
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


def _textured_session(path: Path, seconds: float = 3.0, size: tuple[int, int] = (320, 240)):
    """Our session format with 30 fps frames much larger than the model input, full of detail
    (so any extra resampling shows), and a 50 Hz IMU; one label over the whole session."""
    import cv2

    from evimae_stream.sessions import CameraSpec, ImuSpec, SessionWriter

    t0 = 7_000_000_000
    rng = np.random.default_rng(5)
    w, h = size
    with SessionWriter(path, imu={"left_arm": ImuSpec(50.0)}, camera=CameraSpec(w, h, 30.0),
                       t0_ns=t0, wall_start="fixed") as rec:  # fmt: skip
        idx = np.arange(int(seconds * 50))
        rec.add_imu_block("left_arm", t0 + idx * 20_000_000, rng.normal(0, 1, (len(idx), 3)))
        for i in range(int(seconds * 30)):
            coarse = rng.integers(0, 256, (h // 6, w // 6, 3), dtype=np.uint8)
            frame = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
            rec.add_frame(t0 + i * 33_333_333, frame)
        rec.add_label(0.0, seconds, "moving")
    return path


def test_training_video_is_the_runtimes_for_the_same_window(tmp_path: Path) -> None:
    """The training dataset's video tensor of a window is bit for bit the one the runtime
    computes for the same window: the session replayed into the runtime's rig (its camera gate
    resizes each frame once to the model size), frames picked by the runtime, preprocessed by
    it."""
    from evimae_stream.clock import VirtualClock
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.rig import build_rig
    from evimae_stream.sessions import open_session
    from evimae_stream.sessions.playback import ReplaySource
    from evimae_stream.streams import StreamSpec
    from training.windows import cut_session, make_label_fn

    size, n = 64, 4
    path = _textured_session(tmp_path / "session")
    spec = ModelSpec(classes=("moving",), modes=("video_only",),
                     geometry=WindowGeometry(1.0, 50.0, n, 1.0),
                     preprocess=PreprocessConfig(norm_mean=0.0, norm_std=1.0, num_frames=n,
                                                 img_size=size))  # fmt: skip
    store = FrameStore(size)
    pcfg = PreprocessConfig(num_frames=n, img_size=size)
    with open_session(path) as session:
        items, _ = cut_session(
            session, spec.geometry, 0.5, make_label_fn({}, None),
            need_imu=False, need_video=True, store=store,
        )  # fmt: skip
        origin = int(session.t0_ns)
        clock = VirtualClock(origin)
        streams = StreamSpec(imu_rates={"left_arm": 50.0}, camera_fps=session.video.fps)
        rig = build_rig(spec, streams, clock)
        buffer, gates = rig.buffer, rig.gates
        ReplaySource(session, gates.imu, gates.camera, t0_ns=origin).advance_to(
            session.duration_s + 1.0
        )
        gates.release(None)
    assert len(items) >= 4
    ds = WindowDataset(items, store, ["moving"], pcfg, need_imu=False, need_video=True)
    for k, it in enumerate(items):
        t_ref_ns = origin + round(it.t_ref * 1e9)
        window = buffer.assemble_window(spec.geometry, t_ref_ns)
        assert window.frames is not None, window.missing
        runtime = frames_to_video_tensor(window.frames, spec.img_size)  # what build_inputs feeds
        assert torch.equal(ds[k]["video"], runtime), f"window ending at {it.t_ref} s"


def test_training_imu_window_is_the_runtimes_for_the_same_window(tmp_path: Path) -> None:
    """The training window's (samples, 12) IMU input is bit for bit what the runtime feeds the
    spectrogram for the same window: the session replayed into the runtime's rig, the window
    cut by the buffer with the model's geometry, the missing slots filled by the runtime's
    policy."""
    from evimae_stream.clock import VirtualClock
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.policy import plan_window
    from evimae_stream.runtime.rig import build_rig
    from evimae_stream.sessions import open_session
    from evimae_stream.sessions.playback import ReplaySource
    from evimae_stream.streams import StreamSpec
    from evimae_stream.types import PLACEMENTS
    from training.windows import cut_session, make_label_fn

    path = _textured_session(tmp_path / "session")
    spec = ModelSpec(classes=("moving",), modes=("imu_only",),
                     geometry=WindowGeometry(1.0, 50.0, 4, 1.0),
                     preprocess=PreprocessConfig(norm_mean=0.0, norm_std=1.0, num_frames=4,
                                                 img_size=32))  # fmt: skip
    with open_session(path) as session:
        items, _ = cut_session(
            session, spec.geometry, 0.5, make_label_fn({}, None), fill_missing=True
        )
        origin = int(session.t0_ns)
        streams = StreamSpec(imu_rates={"left_arm": 50.0})
        rig = build_rig(spec, streams, VirtualClock(origin))
        buffer, gates = rig.buffer, rig.gates
        ReplaySource(session, gates.imu, None, t0_ns=origin).advance_to(session.duration_s + 1)
        gates.release(None)
    assert len(items) >= 4
    for it in items:
        window = buffer.assemble_window(spec.geometry, origin + round(it.t_ref * 1e9))
        plan = plan_window(window.imu_present, False, spec.modes, window.missing)
        assert plan.mode == "imu_only", plan.reason
        runtime = np.concatenate([window.imu[plan.slots[p]][:, :3] for p in PLACEMENTS], axis=1)
        assert np.array_equal(it.imu, runtime), f"window ending at {it.t_ref} s"
        assert set(it.filled) == set(plan.filled) == {"right_arm", "left_leg", "right_leg"}
