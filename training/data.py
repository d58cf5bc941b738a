"""Training data: every configured source cut into windows, split, preprocessed and cached.

Sources (:class:`~training.config.SourceConfig`): any session :func:`open_session` reads (our
recordings, WEAR subjects, CMU-MMAC sessions), synthetic wearers (generated once under
``data.synthetic_dir``), and EVI-MAE release clips. Windows are cut by :mod:`training.windows`.
Preprocessing is the runtime's: :func:`evimae_stream.preprocess.preprocess_imu` and
:func:`~evimae_stream.preprocess_video.frames_to_video_tensor`; frames are cached already resized to
the model's input size exactly as the runtime resizes them (:class:`~training.windows.FrameStore`),
so an evaluation window's video tensor is the runtime's. IMU spectrograms are cached in memory
(float16, computed once in vectorised batches) unless IMU noise augmentation is on for the
training split, which needs a fresh spectrogram of every noisy window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from evimae_stream.errors import InputError
from evimae_stream.preprocess import PreprocessConfig, preprocess_imu
from evimae_stream.preprocess_video import frame_indices_for_window
from evimae_stream.sessions import ReleaseClipDataset, open_session
from evimae_stream.window import WindowGeometry, resample_imu
from training.augment import add_imu_noise, crop_box, multiscale_crop, video_tensor
from training.config import SourceConfig, TrainConfig
from training.motion_targets import MotionTargets
from training.windows import (
    FrameStore,
    WindowItem,
    cut_session,
    make_label_fn,
)

log = logging.getLogger(__name__)

_NS = 1_000_000_000


@dataclass
class DataBundle:
    """The cut windows of every split, the class list and where the windows came from."""

    splits: dict[str, list[WindowItem]]
    classes: list[str]
    store: FrameStore
    sources: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {s: len(v) for s, v in self.splits.items()}


def window_geometry(cfg: TrainConfig, num_frames: int) -> WindowGeometry:
    """The window geometry of a config (frame count from the model)."""
    return WindowGeometry(cfg.imu.window_s, cfg.imu.rate_hz, num_frames, cfg.video_span_s)


def preprocess_config(cfg: TrainConfig, num_frames: int, img_size: int) -> PreprocessConfig:
    """The runtime preprocessing settings the model is trained with (stored in the artifact)."""
    return PreprocessConfig(
        norm_mean=float(cfg.imu.norm_mean),
        norm_std=float(cfg.imu.norm_std),
        num_frames=num_frames,
        img_size=img_size,
    )


def synthetic_session_dir(cfg: TrainConfig, src: SourceConfig) -> Path:
    """Where a synthetic source lives (generated on first use, reused afterwards)."""
    root = Path(cfg.data.synthetic_dir or Path(cfg.run_dir) / "synthetic")
    return root / (
        f"seed{src.seed}_a{src.actions}_m{src.minutes:g}_{src.width}x{src.height}_"
        f"{cfg.imu.rate_hz:g}hz"
    )


def ensure_synthetic(cfg: TrainConfig, src: SourceConfig) -> Path:
    """Generate the synthetic session of ``src`` unless it is already there."""
    from evimae_stream.synthetic import generate_session

    path = synthetic_session_dir(cfg, src)
    if (path / "session.json").is_file() and (path / "labels.csv").is_file():
        return path
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    summary = generate_session(
        tmp,
        actions=src.actions,
        minutes=src.minutes,
        seed=src.seed,
        size=(src.width, src.height),
        imu_rate_hz=cfg.imu.rate_hz,
        progress=True,
    )
    tmp.rename(path)
    log.info("synthetic session %s: %s", path, summary.line())
    return path


def _release_items(
    src: SourceConfig,
    spec: WindowGeometry,
    need_imu: bool,
    need_video: bool,
    store: FrameStore,
    labelled: bool = True,
) -> tuple[list[WindowItem], list[str]]:
    """Every clip of an EVI-MAE release split as one window (IMU resampled to the model grid,
    ``num_frames`` frames evenly over the clip's video, as the published loader picks them).

    The release's pretraining entries carry no label (``"0"``); they are kept under the label
    ``""`` when ``labelled`` is False (pretraining), and skipped when a label is needed.
    """
    ds = ReleaseClipDataset(src.path, src.release_split, src.labels_file)
    items = []
    skipped = 0
    for i in range(len(ds)):
        clip = ds[i]
        imu = None
        if need_imu:
            # a clip is already one window: its samples span (L-1)/rate, so it is padded with
            # its edge samples one period out on both sides, then resampled onto the model grid
            # ending at the last sample (identity when the clip matches the grid)
            n = len(clip.imu)
            k = np.arange(-1, n + 1)
            t_ns = np.round(k / clip.imu_rate * _NS).astype(np.int64)
            padded = np.concatenate([clip.imu[:1], clip.imu, clip.imu[-1:]])
            grid = spec.imu_grid(int(t_ns[-2]))
            imu, why = resample_imu(t_ns, padded, grid, clip.imu_rate)
            if imu is None:
                raise InputError(
                    f"{ds.labels_path}: clip {clip.clip_id} is shorter than imu.window_s "
                    f"({why}); use the dataset's window (WEAR 5 s, CMU-MMAC 5 s)"
                )
        frames = None
        if need_video:
            if clip.video is None:
                skipped += 1
                continue
            frames = _clip_frames(clip.video, spec.num_frames, store)
        labels = tuple(ds.classes[k] for k in clip.labels)
        if not labels:
            if labelled:
                skipped += 1
                continue
            labels = ("",)
        items.append(WindowItem(imu, frames, labels, clip.clip_id, 0.0))
    if skipped:
        log.warning("%s: %d clips skipped (no label or no video)", ds.labels_path, skipped)
    return items, list(ds.classes)


def _clip_frames(path: Path, num_frames: int, store: FrameStore) -> list[int]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(bgr)
    finally:
        cap.release()
    if not frames:
        raise InputError(f"{path}: no decodable frames; check the clip video")
    picks = frame_indices_for_window(len(frames), num_frames)
    keys = {i: store.add(cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB)) for i in sorted(set(picks))}
    return [keys[i] for i in picks]


def carve_release_val(
    items: list[WindowItem], fraction: float, seed: int, source_index: int
) -> tuple[list[WindowItem], list[WindowItem]]:
    """(train, val): ``round(fraction × clips)`` clips of a release training split, drawn at
    random (seeded by ``(seed, source_index)``, so every run and every DDP rank draws the same
    ones) become validation clips; at least one, and at least one left for training.

    Release clips are already short windows with no timeline to cut at, so the split is by clip
    (a session's tail cannot be held out as :func:`load_data` does for sessions). Both lists keep
    the release's order.
    """
    if fraction <= 0 or len(items) < 2:
        return list(items), []
    n_val = min(len(items) - 1, max(1, round(len(items) * fraction)))
    order = np.random.default_rng([seed, source_index]).permutation(len(items))
    val_idx = set(order[:n_val].tolist())
    train = [it for k, it in enumerate(items) if k not in val_idx]
    val = [it for k, it in enumerate(items) if k in val_idx]
    return train, val


def load_data(
    cfg: TrainConfig,
    num_frames: int,
    need_imu: bool,
    need_video: bool,
    labelled: bool = True,
    *,
    img_size: int,
) -> DataBundle:
    """Cut every source into windows and assign splits (see :class:`~training.config.DataSection`).

    ``labelled`` False (pretraining) keeps unlabelled windows too, under the label ``""``.
    Frames are kept at the model's ``img_size`` (:class:`~training.windows.FrameStore`). With no
    ``val`` source, ``data.val_fraction`` of every ``train`` source becomes the validation split:
    the tail of each session, a seeded random subset of each release's clips (never the test
    split's).
    """
    spec = window_geometry(cfg, num_frames)
    d = cfg.data
    label_fn = make_label_fn(d.label_map, d.unlabelled if labelled else "")
    store = FrameStore(img_size)
    splits: dict[str, list[WindowItem]] = {"train": [], "val": [], "test": []}
    release_classes: list[str] | None = None
    described = []
    has_val = any(s.split == "val" for s in d.sources)
    for i, src in enumerate(d.sources):
        key = f"data.sources.{i}"
        stride = d.stride_s if src.split == "train" else (d.eval_stride_s or d.stride_s)
        carve = src.split == "train" and not has_val and d.val_fraction > 0
        if src.kind == "release":
            if not Path(src.path).exists():
                raise InputError(f"{src.path}: release root not found ({key}.path)")
            items, classes = _release_items(src, spec, need_imu, need_video, store, labelled)
            release_classes = release_classes or classes
            if carve:
                tr, va = carve_release_val(items, d.val_fraction, cfg.seed, i)
                splits["train"].extend(tr)
                splits["val"].extend(va)
                windows: dict[str, int] = {"train": len(tr), "val": len(va)}
            else:
                splits[src.split].extend(items)
                windows = {src.split: len(items)}
            described.append({"kind": "release", "path": src.path, "split": src.split,
                              "release_split": src.release_split, "windows": windows})  # fmt: skip
            continue
        path, got, desc = _session_windows(
            cfg, src, key, spec, stride, carve, label_fn, store, need_imu, need_video
        )
        for split, items in got.items():
            splits[split].extend(items)
        described.append(
            {"kind": src.kind, "path": str(path), "split": src.split,
             "seed": src.seed if src.kind == "synthetic" else None, "windows": desc}
        )  # fmt: skip
    classes = _class_list(cfg, splits, release_classes, labelled)
    if not splits["train"]:
        raise InputError(
            "no training windows: check data.sources, imu.window_s/data.stride_s and the labels"
        )
    return DataBundle(splits, classes, store, described)


def _session_windows(
    cfg: TrainConfig, src: SourceConfig, key: str, spec: WindowGeometry, stride: float, carve: bool,
    label_fn, store: FrameStore, need_imu: bool, need_video: bool,
) -> tuple[Path, dict[str, list[WindowItem]], dict[str, Any]]:  # fmt: skip
    """The windows of one session source by split (the tail carved off as validation when
    ``carve``), and their counts for the artifact's record."""
    d = cfg.data
    if src.kind == "synthetic":
        path = ensure_synthetic(cfg, src)
    else:
        path = Path(src.path)
        if not path.exists():
            raise InputError(f"{path}: data path not found ({key}.path); check the path")
    with open_session(path) as session:
        if need_video and not session.has_video:
            raise InputError(
                f"{path}: session has no video but the objective/mode needs it "
                f"({key}); use model.mode=imu_only"
            )
        common = {
            "need_imu": need_imu,
            "need_video": need_video,
            "fill_missing": cfg.imu.fill_missing,
            "store": store,
            "classes": d.classes,
            "name": str(path),
        }
        if carve:
            dur = session.duration_s
            cut = dur * (1.0 - d.val_fraction)
            tr, _ = cut_session(session, spec, stride, label_fn, t_range=(0.0, cut), **common)
            va, _ = cut_session(
                session, spec, d.eval_stride_s or stride, label_fn,
                t_range=(cut + spec.span_s, dur), **common,
            )  # fmt: skip
            got = {"train": tr, "val": va}
            desc: dict[str, Any] = {
                "train": len(tr),
                "val": len(va),
                "val_from_s": cut + spec.span_s,
            }
        else:
            items, _ = cut_session(session, spec, stride, label_fn, **common)
            got = {src.split: items}
            desc = {src.split: len(items)}
    if not sum(len(v) for v in got.values()):
        log.warning("%s: no usable windows", path)
    return path, got, desc


def _class_list(
    cfg: TrainConfig,
    splits: dict[str, list[WindowItem]],
    release_classes: list[str] | None,
    labelled: bool,
) -> list[str]:
    if cfg.data.classes is not None:
        return list(cfg.data.classes)
    if release_classes is not None:
        return release_classes
    seen = sorted({lab for items in splits.values() for it in items for lab in it.labels})
    if not labelled:
        return seen
    if cfg.data.unlabelled is not None and cfg.data.unlabelled in seen:
        # the null class first, as WEAR and the synthetic wearer number it
        seen.remove(cfg.data.unlabelled)
        seen.insert(0, cfg.data.unlabelled)
    return seen


class WindowDataset(Dataset):
    """Preprocessed windows: ``{"imu": (12, T, F), "video": (3, T, S, S), "target": (C,),
    "label": int}`` (keys only for the modalities asked for).

    ``target`` is multi-hot (a release clip may have several labels); ``label`` the first.
    With ``motion`` (pretraining for MME's target) also ``"motion": (N_v, D_m)``, the
    trajectories of the window as cropped (:class:`~training.motion_targets.MotionTargets`).
    ``train`` turns the augmentations on; their randomness comes from (seed, epoch, index), so
    a resumed run sees exactly the same augmented windows.
    """

    def __init__(
        self,
        items: list[WindowItem],
        store: FrameStore,
        classes: list[str],
        pcfg: PreprocessConfig,
        *,
        need_imu: bool,
        need_video: bool,
        train: bool = False,
        crop_scales: tuple[float, ...] = (1.0,),
        imu_noise_std: float = 0.0,
        seed: int = 0,
        motion: MotionTargets | None = None,
    ) -> None:
        self.items = items
        self.motion = motion
        self.store = store
        self.classes = classes
        self.index = {c: i for i, c in enumerate(classes)}
        self.pcfg = pcfg
        self.need_imu = need_imu
        self.need_video = need_video
        self.train = train
        self.crop_scales = tuple(crop_scales)
        self.imu_noise_std = imu_noise_std if train else 0.0
        self.seed = seed
        self.epoch = 0
        self._spec: list[torch.Tensor | None] = [None] * len(items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def warm_cache(self, batch: int = 32) -> None:
        """Compute every IMU spectrogram once (vectorised), unless noise makes them per-epoch,
        and every flow field the motion targets need."""
        if self.motion is not None:
            for it in self.items:
                self.motion.flows(self.store.get(it.frames), it.frames)
        if not self.need_imu or self.imu_noise_std > 0:
            return
        todo = [i for i, s in enumerate(self._spec) if s is None]
        for k in range(0, len(todo), batch):
            idx = todo[k : k + batch]
            x = np.stack([self.items[i].imu for i in idx])  # (b, L, 12)
            spec = preprocess_imu(x, self.pcfg).to(torch.float16)  # (b, 12, T, F)
            for j, i in enumerate(idx):
                self._spec[i] = spec[j].clone()

    def targets(self) -> np.ndarray:
        """(N,) first-label class index of every window."""
        return np.array([self.index[it.labels[0]] for it in self.items], dtype=np.int64)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        it = self.items[i]
        out: dict[str, torch.Tensor] = {}
        rng = self._rng(i) if self.train else None
        if self.need_imu:
            if self.imu_noise_std > 0 and rng is not None:
                x = add_imu_noise(it.imu, self.imu_noise_std, rng)
                out["imu"] = preprocess_imu(x, self.pcfg)
            else:
                if self._spec[i] is None:
                    self._spec[i] = preprocess_imu(it.imu, self.pcfg).to(torch.float16)
                out["imu"] = self._spec[i].float()
        if self.need_video:
            frames = self.store.get(it.frames)
            box = None
            if rng is not None:
                box = crop_box(*frames[0].shape[:2], self.crop_scales, rng)
            if self.motion is not None:
                target = self.motion.target(frames, it.frames, box)
                out["motion"] = torch.from_numpy(target)
            if box is not None:
                frames = multiscale_crop(frames, box)
            out["video"] = video_tensor(frames, self.pcfg.img_size)
        target = torch.zeros(len(self.classes))
        for lab in it.labels:
            if lab in self.index:
                target[self.index[lab]] = 1.0
        out["target"] = target
        out["label"] = torch.tensor(self.index.get(it.labels[0], -1) if it.labels else -1)
        return out


def collate(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack every key of a list of window dicts."""
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
