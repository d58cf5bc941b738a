"""Video preprocessing, exactly as the published EVI-MAE data loader (DESIGN §6): frames picked
evenly over a window; T RGB uint8 frames resized to size×size with OpenCV bilinear
(``cv2.INTER_LINEAR``), /255, ImageNet mean/std → ``(3, T, size, size)`` float32."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch

from evimae_stream.errors import InputError
from evimae_stream.preprocess import PreprocessConfig

#: ImageNet statistics used by the video branch (VideoMAE convention).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def frame_indices_for_window(num_available: int, num_frames: int = 16) -> list[int]:
    """Indices of ``num_frames`` frames evenly spaced over ``num_available`` frames.

    Pick ``i`` is ``floor(i·num_available/num_frames)``: for 64 frames and 16 picks that is every
    4th frame from the first (the published 30 fps ≈ 2 s clip). Fewer frames than picks repeat
    frames, still in time order.
    """
    for name, value in (("num_available", num_available), ("num_frames", num_frames)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(
                f"video window: {name} must be a positive integer, got {value!r}; a window "
                "needs at least one frame"
            )
    return [i * int(num_available) // int(num_frames) for i in range(int(num_frames))]


def _check_frame(frame: Any, where: str) -> np.ndarray:
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(
            f"video {where}: expected an RGB frame of shape (H, W, 3), got {arr.shape}"
        )
    if arr.dtype != np.uint8:
        raise InputError(
            f"video {where}: expected uint8 RGB pixels, got dtype {arr.dtype}; pass frames "
            "as decoded (0–255)"
        )
    return arr


def _resize_stack(frames: Sequence[Any] | np.ndarray, size: int, where: str) -> np.ndarray:
    """Resize every frame to ``size×size`` (``cv2.INTER_LINEAR``); returns uint8 (T, S, S, 3)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"video: size must be a positive integer, got {size!r}")
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise InputError(
            f"video {where}: expected frames of shape (T, H, W, 3), got {frames.shape}"
        )
    if len(frames) == 0:
        raise InputError(f"video {where}: no frames; a window needs at least one frame")
    out = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        arr = _check_frame(frame, f"{where} frame {i}")
        if arr.shape[0] == size and arr.shape[1] == size:
            out[i] = arr
        else:
            out[i] = cv2.resize(arr, (size, size), interpolation=cv2.INTER_LINEAR)
    return out


def _normalise(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (..., 3) → float32 (..., 3) in ImageNet units."""
    t = torch.from_numpy(pixels).to(torch.float32) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)
    return (t - mean) / std


def frames_to_video_tensor(frames: Sequence[Any] | np.ndarray, size: int = 224) -> torch.Tensor:
    """T RGB uint8 frames (a sequence of (H, W, 3) or an array (T, H, W, 3)) → (3, T, S, S).

    Each frame is resized to ``size×size`` with OpenCV bilinear interpolation
    (``cv2.resize``, ``INTER_LINEAR``), scaled to [0, 1] and normalised with the ImageNet
    mean/std. Frames must already be RGB (OpenCV decodes BGR: convert first).
    """
    pixels = _resize_stack(frames, size, "window")  # (T, S, S, 3) uint8
    return _normalise(pixels).permute(3, 0, 1, 2).contiguous()  # (3, T, S, S)


def frames_to_video_batch(frames: Sequence[Any] | np.ndarray, size: int = 224) -> torch.Tensor:
    """Batched :func:`frames_to_video_tensor`: (B, T, H, W, 3) uint8 → (B, 3, T, S, S)."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, np.ndarray) and frames.ndim != 5:
        raise InputError(
            f"video batch: expected frames of shape (B, T, H, W, 3), got {frames.shape}"
        )
    if len(frames) == 0:
        raise InputError("video batch: empty batch; pass at least one window")
    stacks = [_resize_stack(item, size, f"batch item {b}") for b, item in enumerate(frames)]
    lengths = {s.shape[0] for s in stacks}
    if len(lengths) != 1:
        raise InputError(
            f"video batch: windows have different frame counts {sorted(lengths)}; every window "
            "needs the same number of frames"
        )
    pixels = np.stack(stacks)  # (B, T, S, S, 3)
    return _normalise(pixels).permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, T, S, S)


def preprocess_video(frames: Sequence[Any] | np.ndarray, config: PreprocessConfig) -> torch.Tensor:
    """Pick ``config.num_frames`` evenly spaced frames and return the (3, T, S, S) tensor."""
    n = len(frames)
    if n == 0:
        raise InputError("video window: no frames; a window needs at least one frame")
    picks = frame_indices_for_window(n, config.num_frames)
    return frames_to_video_tensor([frames[i] for i in picks], config.img_size)
