"""MME's motion-trajectory targets: the extractor on known motion, the pretraining option.

The extractor must recover a known translation of a textured pattern within a pixel, give zero
on a static scene and drop the points that leave the frame; the motion head's output must be the
target's shape; a short pretraining run with ``video_target: motion`` must lower its loss; and
the published ``pixels`` default must keep the published keys.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from evimae_stream.model import PretrainConfig, create_pretrain_model
from tests.helpers.training import MICRO, micro_args, read_log, run_train
from training.motion_targets import MotionSpec, MotionTargets, crop_flow, dense_flow, track

SPEC = MotionSpec(num_frames=8, img_size=112)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _texture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = rng.integers(0, 256, (size * 2, size * 2, 3), dtype=np.uint8)
    return cv2.GaussianBlur(big, (5, 5), 1.5)


def _moving(shift: tuple[float, float], frames: int = 8, size: int = 112) -> list[np.ndarray]:
    """Frames of a texture whose content moves by ``shift`` (dx, dy) pixels per frame."""
    big = _texture(size)
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -size / 2 + t * shift[0]], [0, 1, -size / 2 + t * shift[1]]])
        out.append(cv2.warpAffine(big, m, (size, size), flags=cv2.INTER_LINEAR))
    return out


def _targets(frames: list[np.ndarray], spec: MotionSpec = SPEC) -> np.ndarray:
    return MotionTargets(spec).target(frames, list(range(len(frames))))


def _grid(target: np.ndarray, spec: MotionSpec = SPEC) -> np.ndarray:
    """(N_v, dim) → (tubelets, side, side, steps, points, 2)."""
    n_tub = spec.num_frames // spec.tubelet
    return target.reshape(n_tub, spec.side, spec.side, spec.steps, spec.grid**2, 2)


@pytest.mark.parametrize("shift", [(3.0, -2.0), (2.5, 1.5), (6.0, 4.0)])
def test_known_translation_gives_that_displacement_within_a_pixel(shift) -> None:
    target = _grid(_targets(_moving(shift)))
    inner = target[:3, 1:-1, 1:-1]  # tubelets whose track fits in the window, away from borders
    assert np.isfinite(inner).all()
    err = np.abs(inner - np.array(shift, np.float32))
    assert err.max() < 1.0, err.max()
    assert err.mean() < 0.2


def test_static_scene_gives_zero_motion() -> None:
    target = _targets(_moving((0.0, 0.0)))
    valid = target[np.isfinite(target).all(axis=1)]
    assert len(valid) == 3 * SPEC.side**2
    assert np.abs(valid).max() < 0.05


def test_points_leaving_the_frame_stop_at_the_border_and_empty_tokens_are_dropped() -> None:
    # everything moves 20 px right per frame: points of the right columns leave the frame
    flows = np.zeros((SPEC.num_frames - 1, 112, 112, 2), np.float32)
    flows[..., 0] = 20.0
    first = _grid(track(flows, SPEC))[0]  # (side, side, steps, points, 2)
    assert np.allclose(first[:, :4, :, :, 0], 20.0)  # far from the border: moves freely
    assert np.allclose(first[..., 1][np.isfinite(first[..., 1])], 0.0)
    assert np.isnan(first[:, 5:]).all()  # every point of the last two columns left: no target
    # column 4: points at x 67.5 and 75.5 reach 107.5 and 115.5 after two steps; the second
    # stops at the border (111), the first stays in and keeps the token's target
    col = first[:, 4, :, :, 0]  # (rows, steps, points): points ordered row-major in the patch
    assert np.allclose(col[:, 0], 20.0)
    assert np.allclose(col[:, 1, [0, 2]], 20.0)
    assert np.allclose(col[:, 1, [1, 3]], 111.0 - 95.5)


def test_tracks_that_would_run_past_the_window_have_no_target() -> None:
    target = _grid(_targets(_moving((1.0, 0.0))))
    assert np.isnan(target[-1]).all()  # last tubelet starts at frame 6: 6 + 2 steps > 7
    assert np.isfinite(target[:-1]).all()


def test_targets_are_cached_and_a_crop_rescales_the_cached_flow() -> None:
    frames = _moving((2.0, 1.0))
    mt = MotionTargets(SPEC)
    keys = list(range(8))
    a = mt.target(frames, keys)
    assert mt.target(frames, keys) is a  # the second epoch reads the cache
    size_before = mt.nbytes
    crop = (0, 0, 56, 56)  # a half-size crop resized to 112: motion doubles
    b = _grid(mt.target(frames, keys, crop))
    assert mt.nbytes == size_before  # no new flow computed for the crop
    assert "7 flow fields for 1 windows" in mt.report()
    inner = b[:3, 1:-1, 1:-1]
    assert np.abs(inner - np.array([4.0, 2.0])).max() < 1.0
    flow = np.ones((1, 112, 112, 2), np.float32)
    assert crop_flow(flow, (10, 20, 56, 28), 112)[0, 50, 50].tolist() == [4.0, 2.0]


def test_dense_flow_methods_agree_on_small_motion() -> None:
    a, b = _moving((2.0, -1.0), frames=2)
    for method in ("dis", "farneback"):
        f = dense_flow(a, b, method)[16:-16, 16:-16]
        assert np.abs(f - np.array([2.0, -1.0])).max() < 1.0, method


def test_video_target_option_validation_and_default() -> None:
    assert PretrainConfig().video_target == "pixels"
    assert PretrainConfig(video_target="pixels+motion").wants_pixels
    with pytest.raises(ValueError, match="video_target must be one of"):
        PretrainConfig(video_target="flow")
    with pytest.raises(ValueError, match="motion_norm must be one of"):
        PretrainConfig(motion_norm="max")
    with pytest.raises(ValueError, match="motion_steps must be a positive integer"):
        PretrainConfig(motion_steps=0)
    with pytest.raises(ValueError, match="motion_weight"):
        PretrainConfig(motion_weight=-1.0)
    with pytest.raises(ValueError, match=r"MotionSpec\.flow"):
        MotionSpec(8, 112, flow="lk")


def test_heads_exist_only_when_the_target_asks_for_them() -> None:
    keys = {
        t: {k for k in create_pretrain_model("evimae_tiny", video_target=t).state_dict()}
        for t in ("pixels", "motion", "pixels+motion")
    }
    assert not any("decoder_pred_motion" in k for k in keys["pixels"])
    assert keys["motion"] == keys["pixels"] - {
        "decoder_pred_video.weight",
        "decoder_pred_video.bias",
    } | {"decoder_pred_motion.weight", "decoder_pred_motion.bias"}
    assert keys["pixels+motion"] == keys["pixels"] | keys["motion"]


def _video_and_motion(model, b: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    cfg = model.cfg
    mt = MotionTargets(MotionSpec(cfg.num_frames, cfg.img_size, cfg.tubelet, cfg.patch))
    clips = [_moving((1.0 + i, 0.5 * i)) for i in range(b)]
    motion = torch.stack(
        [torch.from_numpy(mt.target(c, list(range(i * 8, i * 8 + 8)))) for i, c in enumerate(clips)]
    )
    video = torch.stack(
        [torch.from_numpy(np.stack(c)).permute(3, 0, 1, 2).float() / 255 for c in clips]
    )
    imu = torch.randn(
        b, 12, cfg.spec_time, cfg.spec_freq, generator=torch.Generator().manual_seed(0)
    )
    return imu, video, motion


def test_motion_target_shape_matches_the_decoder_head() -> None:
    torch.manual_seed(0)
    model = create_pretrain_model("evimae_tiny", video_target="motion")
    imu, video, motion = _video_and_motion(model, 2)
    assert motion.shape == (2, model.cfg.video_tokens, model.pcfg.motion_dim)
    assert model.decoder_pred_motion.out_features == motion.shape[-1]
    out = model(imu, video, generator=torch.Generator().manual_seed(0), motion=motion)
    assert set(out) == {
        "loss", "loss_imu", "loss_video", "loss_contrastive", "loss_graph", "loss_motion"
    }  # fmt: skip
    assert float(out["loss_video"]) == 0.0 and out["loss_motion"].item() > 0
    with pytest.raises(ValueError, match="pass the motion targets"):
        model(imu, video)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["patch_std", "patch"])
def test_short_pretraining_with_motion_lowers_its_loss(norm) -> None:
    torch.manual_seed(0)
    model = create_pretrain_model("evimae_tiny", video_target="motion", motion_norm=norm)
    imu, video, motion = _video_and_motion(model)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for step in range(12):
        out = model(imu, video, generator=torch.Generator().manual_seed(step % 2), motion=motion)
        opt.zero_grad()
        out["loss_motion"].backward()
        opt.step()
        losses.append(out["loss_motion"].item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


@pytest.mark.slow
def test_train_py_pretrains_with_pixels_and_motion(tmp_path) -> None:
    """The recipe option end to end: synthetic wearers → cached targets → both video heads."""
    micro = MICRO.replace("num_frames: 2", "num_frames: 4").replace(
        "}", ", video_target: pixels+motion, motion_steps: 1}"
    )
    run = tmp_path / "pre"
    args = micro_args(run, tmp_path / "synth", "objective=pretrain", "train.epochs=1",
                      "train.max_steps_per_epoch=2", test=False)  # fmt: skip
    args[args.index(MICRO)] = micro
    proc = run_train(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = read_log(run)[0]
    assert np.isfinite(float(row["train_loss"])) and np.isfinite(float(row["val_loss"]))
    state = torch.load(run / "pretrain_encoder.pt", weights_only=False)["model"]
    assert state["decoder_pred_motion.weight"].shape == (8, 16)  # 1 step x 4 points x 2
    assert "decoder_pred_video.weight" in state
