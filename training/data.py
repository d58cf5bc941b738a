"""Training data: every configured source cut into windows, split, preprocessed and cached.

Sources (:class:`~training.config.SourceConfig`): any session :func:`open_session` reads (our
recordings, WEAR subjects, CMU-MMAC sessions), synthetic wearers (generated once under
``data.synthetic_dir``), and EVI-MAE release clips. Windows are cut by :mod:`training.windows`.
Preprocessing is the runtime's: :func:`evimae_stream.imu_input.imu_model_input` and
:func:`~evimae_stream.preprocess_video.frames_to_video_tensor`; frames are cached already resized to
the model's input size exactly as the runtime resizes them (:class:`~training.windows.FrameStore`),
so an evaluation window's video tensor is the runtime's. IMU spectrograms are cached in memory
(float16, computed once in vectorised batches) unless IMU noise augmentation is on for the
training split, which needs a fresh spectrogram of every noisy window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from evimae_stream.errors import InputError
from evimae_stream.imu_input import imu_model_input
from evimae_stream.preprocess import PreprocessConfig
from evimae_stream.sessions import open_session
from evimae_stream.types import PLACEMENTS
from evimae_stream.window import WindowGeometry
from training.augment import ImuAugment, add_imu_noise, crop_box, multiscale_crop, video_tensor
from training.config import SourceConfig, TrainConfig
from training.motion_targets import MotionTargets
from training.release_clips import carve_release_val, release_items
from training.sources import SessionRef, resolve_sessions
from training.split import SplitPlan, plan_split, session_subject
from training.windows import MODEL_CHANNELS, FrameStore, WindowItem, cut_session, make_label_fn

log = logging.getLogger(__name__)


@dataclass
class DataBundle:
    """The cut windows of every split, the class list, where the windows came from, how the
    splits were made (:meth:`~training.split.SplitPlan.record`) and which IMU channels the
    model reads."""

    splits: dict[str, list[WindowItem]]
    classes: list[str]
    store: FrameStore
    sources: list[dict] = field(default_factory=list)
    split: dict[str, Any] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {s: len(v) for s, v in self.splits.items()}


def window_geometry(cfg: TrainConfig, num_frames: int) -> WindowGeometry:
    """The window geometry of a config (frame count from the model)."""
    return WindowGeometry(cfg.imu.window_s, cfg.imu.rate_hz, num_frames, cfg.video_span_s)


def preprocess_config(
    cfg: TrainConfig, num_frames: int, img_size: int, imu_input: str = "spectrogram"
) -> PreprocessConfig:
    """The runtime preprocessing settings the model is trained with (stored in the artifact)."""
    return PreprocessConfig(
        norm_mean=float(cfg.imu.norm_mean),
        norm_std=float(cfg.imu.norm_std),
        num_frames=num_frames,
        img_size=img_size,
        imu_input=imu_input,
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


def load_data(
    cfg: TrainConfig,
    num_frames: int,
    need_imu: bool,
    need_video: bool,
    labelled: bool = True,
    *,
    img_size: int,
    channels: tuple[str, ...] = MODEL_CHANNELS,
) -> DataBundle:
    """Cut every source into windows and assign splits (see :class:`~training.config.DataSection`).

    Every path is checked first (:func:`~training.sources.resolve_sessions`), so a missing one is
    reported before anything is cut. ``labelled`` False (pretraining) keeps unlabelled windows
    too, under the label ``""``. Frames are kept at the model's ``img_size``
    (:class:`~training.windows.FrameStore`). With no ``val`` source, ``data.val_fraction`` of the
    training sessions' subjects or sessions becomes the validation split
    (:func:`~training.split.plan_split`), and of each release's training clips a seeded subset.
    ``channels``: the channels of each IMU slot the model reads.
    """
    d = cfg.data
    sources = d.all_sources()
    refs = resolve_sessions(d)
    for key, src in sources:
        if src.kind == "release" and not Path(src.path).exists():
            raise InputError(f"{src.path}: release root not found ({key}.path)")
    geometry = window_geometry(cfg, num_frames)
    cut = _Cutter(cfg, geometry, FrameStore(img_size), need_imu, need_video, labelled, channels)
    carve = d.val_fraction > 0 and not any(src.split == "val" for _, src in sources)
    jobs: list[tuple[SourceConfig, SessionRef]] = []
    for i, (key, src) in enumerate(sources):
        if src.kind == "release":
            cut.release(src, i, carve)
        elif src.kind == "synthetic":
            jobs.append((src, SessionRef(ensure_synthetic(cfg, src), src.split, key)))
        else:
            jobs.extend((src, ref) for ref in refs if ref.key == key)
    plan = None
    train_paths = [str(ref.path) for _, ref in jobs if ref.split == "train"]
    if carve and train_paths:
        subjects = {p: read_subject(Path(p)) for p in train_paths}
        plan = plan_split(subjects, d.split_by, d.val_fraction, cfg.seed)
    for src, ref in jobs:
        cut.session(src, ref, plan)
    cut.report_unlabelled()
    classes = _class_list(cfg, cut.splits, cut.release_classes, labelled)
    if not cut.splits["train"]:
        raise InputError(
            "no training windows: check data.sources, imu.window_s/data.stride_s and the labels"
        )
    split = plan.record() if plan is not None else {"by": "sources", "reason": "split per source"}
    return DataBundle(cut.splits, classes, cut.store, cut.described, split, cut.channel_record())


def read_subject(path: Path) -> str | None:
    """The subject a session names (read from our recordings' ``session.json`` without opening
    the streams, else from the opened session's metadata)."""
    info = path / "session.json"
    if path.is_dir() and info.is_file():
        try:
            return session_subject(json.loads(info.read_text()).get("meta") or {})
        except (OSError, ValueError, AttributeError):
            pass  # open_session reports what is wrong with the file
    with open_session(path) as session:
        return session_subject(session.meta)


class _Cutter:
    """The windows of one :func:`load_data` call, source by source, with their record."""

    def __init__(self, cfg: TrainConfig, spec: WindowGeometry, store: FrameStore,
                 need_imu: bool, need_video: bool, labelled: bool,
                 read: tuple[str, ...] = MODEL_CHANNELS) -> None:  # fmt: skip
        self.cfg, self.spec, self.store, self.read = cfg, spec, store, read
        self.need_imu, self.need_video, self.labelled = need_imu, need_video, labelled
        d = cfg.data
        self.label_fn = make_label_fn(d.label_map, d.unlabelled if labelled else "")
        self.splits: dict[str, list[WindowItem]] = {"train": [], "val": [], "test": []}
        self.described: list[dict[str, Any]] = []
        self.release_classes: list[str] | None = None
        self.channels: dict[str, int] = {}
        self.sessions = 0
        self.no_label = 0

    def release(self, src: SourceConfig, index: int, carve: bool) -> None:
        items, classes = release_items(
            src, self.spec, self.need_imu, self.need_video, self.store, self.labelled
        )
        self.release_classes = self.release_classes or classes
        if carve and src.split == "train":
            tr, va = carve_release_val(items, self.cfg.data.val_fraction, self.cfg.seed, index)
            got = {"train": tr, "val": va}
        else:
            got = {src.split: items}
        self._add(got, {"kind": "release", "path": src.path, "split": src.split,
                        "release_split": src.release_split})  # fmt: skip

    def session(self, src: SourceConfig, ref: SessionRef, plan: SplitPlan | None) -> None:
        """The windows of one session, in the split its source or the plan gives it."""
        d, path = self.cfg.data, ref.path
        eval_stride = d.eval_stride_s or d.stride_s
        with open_session(path) as session:
            if self.need_video and not session.has_video:
                raise InputError(
                    f"{path}: session has no video but the objective/mode needs it "
                    f"({ref.key}); use model.mode=imu_only"
                )
            self._count_channels(session)
            extra: dict[str, Any] = {}
            if ref.split == "train" and plan is not None and plan.by == "tail":
                end = session.duration_s * (1.0 - d.val_fraction)
                got = {"train": self._cut(session, d.stride_s, (0.0, end)),
                       "val": self._cut(session, eval_stride, (end + self.spec.span_s,
                                                               session.duration_s))}  # fmt: skip
                extra["val_from_s"] = end + self.spec.span_s
            else:
                split = plan.split_of(str(path)) if ref.split == "train" and plan else ref.split
                got = {split: self._cut(session, d.stride_s if split == "train" else eval_stride)}
            extra["subject"] = session_subject(session.meta)
        if not sum(len(v) for v in got.values()):
            log.warning("%s: no usable windows", path)
        seed = src.seed if src.kind == "synthetic" else None
        self._add(got, {"kind": src.kind, "path": str(path), "split": src.split,
                        "source": ref.key, "seed": seed, **extra})  # fmt: skip

    def _cut(self, session, stride: float, t_range=None) -> list[WindowItem]:
        items, stats = cut_session(
            session, self.spec, stride, self.label_fn, need_imu=self.need_imu,
            need_video=self.need_video, fill_missing=self.cfg.imu.fill_missing, store=self.store,
            classes=self.cfg.data.classes, t_range=t_range, name=str(session.path),
            channels=self.read,
        )  # fmt: skip
        self.no_label += stats.no_label
        return items

    def report_unlabelled(self) -> None:
        """Say what happened to the windows centred where a session has no label."""
        name = self.cfg.data.unlabelled
        if not self.labelled:
            return
        if name is None:
            if self.no_label:
                log.info(
                    "%d windows with no label at their centre skipped (data.unlabelled: NAME "
                    "trains them as a class)", self.no_label,
                )  # fmt: skip
            return
        n = sum(1 for items in self.splits.values() for it in items if it.labels[0] == name)
        log.warning(
            "%d windows with no label at their centre are trained as class %r (data.unlabelled;"
            " set it to null to skip them)", n, name,
        )  # fmt: skip

    def _count_channels(self, session) -> None:
        self.sessions += 1
        for name in sorted({c for s in session.imu.values() for c in s.channels}):
            self.channels[name] = self.channels.get(name, 0) + 1

    def _add(self, got: dict[str, list[WindowItem]], desc: dict[str, Any]) -> None:
        for split, items in got.items():
            self.splits[split].extend(items)
        self.described.append({**desc, "windows": {s: len(v) for s, v in got.items()}})

    def channel_record(self) -> dict[str, Any]:
        """Which IMU channels the model reads and which the sessions had that it does not."""
        ignored = {c: n for c, n in self.channels.items() if c not in self.read}
        if ignored:
            log.warning(
                "the model reads %s of each slot; not read: %s",
                ", ".join(self.read),
                ", ".join(f"{c} (in {n} of {self.sessions} sessions)" for c, n in ignored.items()),
            )
        return {"read": list(self.read), "slots": list(PLACEMENTS), "not_read": ignored}


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
    a resumed run sees exactly the same augmented windows. ``repeat``: an epoch visits every
    window that many times, each visit its own augmentation draw (``train.min_windows_per_epoch``).
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
        imu_augment: ImuAugment | None = None,
        seed: int = 0,
        motion: MotionTargets | None = None,
        repeat: int = 1,
    ) -> None:
        self.items = items
        self.repeat = max(1, repeat)
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
        self.imu_augment = imu_augment if train and imu_augment and imu_augment.active else None
        self.seed = seed
        self.epoch = 0
        self._spec: list[torch.Tensor | None] = [None] * len(items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items) * self.repeat

    def warm_cache(self, batch: int = 32) -> None:
        """Compute every IMU spectrogram once (vectorised), unless noise makes them per-epoch,
        and every flow field the motion targets need."""
        if self.motion is not None:
            for it in self.items:
                self.motion.flows(self.store.get(it.frames), it.frames)
        if not self.need_imu or self.fresh_imu:
            return
        todo = [i for i, s in enumerate(self._spec) if s is None]
        for k in range(0, len(todo), batch):
            idx = todo[k : k + batch]
            x = np.stack([self.items[i].imu for i in idx])  # (b, L, 12)
            spec = imu_model_input(x, self.pcfg).to(self.cache_dtype)  # (b, 12, T, F) / (b, 12, L)
            for j, i in enumerate(idx):
                self._spec[i] = spec[j].clone()

    @property
    def cache_dtype(self) -> torch.dtype:
        """Spectrograms are cached in float16 (a tenth of the memory); time-domain windows are
        small, so they stay float32, exactly the runtime's input."""
        return torch.float16 if self.pcfg.imu_input == "spectrogram" else torch.float32

    @property
    def fresh_imu(self) -> bool:
        """Whether every training window's spectrogram is computed afresh (augmented IMU)."""
        return self.imu_noise_std > 0 or self.imu_augment is not None

    def targets(self) -> np.ndarray:
        """(N,) first-label class index of every window."""
        return np.array([self.index[it.labels[0]] for it in self.items], dtype=np.int64)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, i])

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i = k % len(self.items)
        it = self.items[i]
        out: dict[str, torch.Tensor] = {}
        rng = self._rng(k) if self.train else None
        if self.need_imu:
            if self.fresh_imu and rng is not None:
                x = it.imu if self.imu_augment is None else self.imu_augment(it.imu, it.filled, rng)
                if self.imu_noise_std > 0:
                    x = add_imu_noise(x, self.imu_noise_std, rng)
                out["imu"] = imu_model_input(x, self.pcfg)
            else:
                if self._spec[i] is None:
                    self._spec[i] = imu_model_input(it.imu, self.pcfg).to(self.cache_dtype)
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
