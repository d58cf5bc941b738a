"""The typed, validated training configuration: YAML recipe + ``--set key=value`` overrides.

A recipe is a YAML mapping whose sections mirror :class:`TrainConfig`. ``--set`` takes dotted
keys (``train.lr=1e-3``, ``data.sources.0.path=/data/sbj_0.csv``); the value is parsed as YAML
and checked against the field's declared type, so ``--set train.epochs=two`` fails with one line
naming the key. Every error is an :class:`~evimae_stream.errors.InputError` (exit code 2).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evimae_stream.datasets import PROFILES
from evimae_stream.errors import InputError
from evimae_stream.types import MODES
from training.align_config import AlignSection
from training.interval_config import IntervalSection
from training.typed_config import build, check_key, config_error, set_dotted

OBJECTIVES = ("finetune", "pretrain", "align", "interval")
SOURCE_KINDS = ("session", "directory", "glob", "synthetic", "release")
#: how a validation split is held out of the training sessions (see :class:`DataSection`)
SPLIT_BY = ("auto", "subject", "session", "tail")
SPLITS = ("train", "val", "test")
INITS = ("scratch", "pretrain", "official", "artifact")
#: ``auto``: bf16 on CPUs with AMX and on CUDA GPUs that support it (else fp16 there), else fp32
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("multistep", "cosine", "constant")
LOSSES = ("bce", "ce")
SELECT_METRICS = ("accuracy", "macro_f1", "mAP", "loss")


@dataclass
class SourceConfig:
    """One data source.

    ``kind``: ``session`` (any directory/file :func:`evimae_stream.sessions.open_session`
    reads: our recordings, WEAR ``sbj_N.csv``, CMU-MMAC CSVs), ``directory`` (every session
    found under ``path``, at any depth), ``glob`` (every session a pattern such as
    ``recordings/2026-*`` matches; ``**`` descends), ``synthetic`` (a synthetic wearer
    generated on first use and cached under ``data.synthetic_dir``), or ``release`` (an EVI-MAE
    ``<ds>-release`` root; ``release_split`` names its split). ``split``: which of our splits the
    windows go to (train / val / test).
    """

    kind: str = "session"
    path: str = ""
    split: str = "train"
    seed: int = 0
    minutes: float = 1.0
    actions: int = 8
    width: int = 160
    height: int = 120
    release_split: str = "train_finetune"
    labels_file: str | None = None

    def validate(self, key: str) -> None:
        if self.kind not in SOURCE_KINDS:
            raise config_error(
                f"{key}.kind", f"{self.kind!r} is not one of {', '.join(SOURCE_KINDS)}"
            )
        if self.split not in SPLITS:
            raise config_error(f"{key}.split", f"{self.split!r} is not one of {', '.join(SPLITS)}")
        if self.kind not in ("synthetic",) and not self.path:
            raise config_error(f"{key}.path", f"a {self.kind} source needs a path")
        synthetic = self.kind == "synthetic"
        if synthetic and (self.seed < 0 or self.actions < 1 or not self.minutes > 0):
            raise config_error(key, "synthetic sources need seed >= 0, actions >= 1, minutes > 0")


@dataclass
class ModelSection:
    """Which network, how it starts, and which forward mode(s) it is trained in.

    ``modality_dropout``: probability that a fine-tune batch is trained IMU-only or video-only
    instead of multimodal (half each), so one multimodal model serves all three modes.
    ``init``: ``scratch``, ``pretrain`` (encoder keys of a ``train.py`` pretrain checkpoint at
    ``init_path``), ``official`` (a published EVI-MAE ``.pth`` at ``init_path``) or
    ``artifact`` (the weights of a model artifact directory at ``init_path``, e.g. a fine-tuned
    model to align).
    """

    variant: str = "evimae_tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    mode: str = "multimodal"
    modality_dropout: float = 0.0
    init: str = "scratch"
    init_path: str = ""
    #: which IMU channels the model reads: never (acceleration), always (+ gyroscope) or auto
    #: (always when every session has a gyroscope and the variant reads it; training/channels.py)
    gyro: str = "never"

    def validate(self) -> None:
        from evimae_stream.model import list_models

        if self.variant not in list_models():
            raise config_error(
                "model.variant", f"{self.variant!r} is unknown; known: {', '.join(list_models())}"
            )
        if self.mode not in MODES:
            raise config_error("model.mode", f"{self.mode!r} is not one of {', '.join(MODES)}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise config_error(
                "model.modality_dropout", f"{self.modality_dropout} is not in [0, 1)"
            )
        if self.modality_dropout > 0 and self.mode != "multimodal":
            raise config_error("model.modality_dropout", "needs model.mode=multimodal")
        if self.gyro not in ("never", "always", "auto"):
            raise config_error("model.gyro", f"{self.gyro!r} is not one of never, always, auto")
        if self.init not in INITS:
            raise config_error("model.init", f"{self.init!r} is not one of {', '.join(INITS)}")
        if self.init != "scratch" and not self.init_path:
            raise config_error("model.init_path", f"model.init={self.init} needs a checkpoint path")


@dataclass
class ImuSection:
    """The model's IMU grid and normalisation.

    ``rate_hz`` × ``window_s`` samples per window (WEAR 50 Hz × 5 s, CMU-MMAC 30 Hz × 5 s).
    ``norm``: ``wear`` / ``cmummac`` (the published pair of the objective: pretraining and
    fine-tuning normalised differently, e.g. WEAR −54.33 / 26.04 against −51.17 / 26.19) or
    ``custom`` (``norm_mean``, ``norm_std``). ``fill_missing``: place an available IMU on
    missing slots (the published one-IMU recipe) instead of skipping the window.
    """

    rate_hz: float = 50.0
    window_s: float = 2.0
    norm: str = "wear"
    norm_mean: float = PROFILES["wear"].norm_mean
    norm_std: float = PROFILES["wear"].norm_std
    fill_missing: bool = False

    def validate(self, objective: str = "finetune") -> None:
        if not (self.rate_hz > 0 and self.window_s > 0):
            raise config_error("imu", f"rate_hz ({self.rate_hz}) and window_s must be > 0")
        if round(self.rate_hz * self.window_s) < 8:
            raise config_error("imu.window_s", "the window must hold at least 8 IMU samples")
        if self.norm not in (*PROFILES, "custom"):
            raise config_error(
                "imu.norm", f"{self.norm!r} is not one of {', '.join(PROFILES)}, custom"
            )
        if self.norm != "custom":
            prof = PROFILES[self.norm]
            pretrain = objective == "pretrain"
            self.norm_mean = prof.pretrain_norm_mean if pretrain else prof.norm_mean
            self.norm_std = prof.pretrain_norm_std if pretrain else prof.norm_std
        if not (math.isfinite(self.norm_mean) and self.norm_std > 0):
            raise config_error(
                "imu.norm_std", f"needs a finite mean and std > 0, got {self.norm_std}"
            )


@dataclass
class VideoSection:
    """Frame selection: ``num_frames`` (the model's) evenly spaced over ``span_s`` seconds ending
    at the window end (None: the IMU window). Frames are cached at the model's input size, as
    the runtime resizes them (:class:`training.windows.FrameStore`)."""

    span_s: float | None = None

    def validate(self) -> None:
        if self.span_s is not None and not self.span_s > 0:
            raise config_error("video.span_s", f"must be > 0, got {self.span_s}")


@dataclass
class DataSection:
    """Sources, window stride, labelling and the validation split.

    ``sessions``: a folder (every session under it), a glob pattern, or a list of them: the
    user's recordings, all training sources (``--set data.sessions=DIR``); ``sources`` lists
    sources one by one, with their kind and split. Every path is checked before any is cut.

    Window label = the label at the window's centre (``t_ref − window_s/2``). Windows without
    a label are skipped unless ``unlabelled`` names a class for them (e.g. ``null``).
    ``label_map`` renames labels first (e.g. ``{null: idle}``); ``classes`` fixes the class
    list and order (default: every label seen, sorted).

    ``val_fraction``: with no ``val`` source, that fraction of the training sessions' groups
    becomes the validation split (at least one group, at least one left to train on), drawn
    with ``seed``. ``split_by`` names the group: ``subject`` (the session's ``meta.subject``,
    WEAR's ``sbj_N``), ``session``, or ``tail`` (the last fraction of each session, a window
    length dropped at the boundary: for a single recording only, since sequential recordings
    then validate on their last activities). ``auto``: subject when every training session
    names one and there are two or more, else session when there are two or more, else tail.
    Of each training release split, that fraction of its clips, drawn at random with ``seed``
    (never from a test split).
    """

    sessions: str | list[str] | None = None
    sources: list[SourceConfig] = field(default_factory=list)
    stride_s: float = 1.0
    eval_stride_s: float | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    unlabelled: str | None = None
    classes: list[str] | None = None
    val_fraction: float = 0.15
    split_by: str = "auto"
    synthetic_dir: str | None = None

    def all_sources(self) -> list[tuple[str, SourceConfig]]:
        """(config key, source) of every source: ``sources`` then each ``sessions`` entry (a
        ``glob`` source when it has wildcards, else a ``directory`` source, split ``train``)."""
        out = [(f"data.sources.{i}", src) for i, src in enumerate(self.sources)]
        for i, entry in enumerate(self.sessions or []):
            kind = "glob" if any(c in entry for c in "*?[") else "directory"
            key = f"data.sessions.{i}" if len(self.sessions or []) > 1 else "data.sessions"
            out.append((key, SourceConfig(kind=kind, path=entry)))
        return out

    def validate(self) -> None:
        if isinstance(self.sessions, str):
            self.sessions = [self.sessions] if self.sessions else None
        if not self.sources and not self.sessions:
            raise config_error(
                "data.sessions",
                "no data sources; pass --set data.sessions=DIR (a folder of sessions) "
                "or list data.sources",
            )
        for i, src in enumerate(self.sources):
            src.validate(f"data.sources.{i}")
        if self.split_by not in SPLIT_BY:
            raise config_error(
                "data.split_by", f"{self.split_by!r} is not one of {', '.join(SPLIT_BY)}"
            )
        if not self.stride_s > 0 or (self.eval_stride_s is not None and not self.eval_stride_s > 0):
            raise config_error("data.stride_s", "strides must be > 0")
        if not 0.0 <= self.val_fraction < 0.9:
            raise config_error("data.val_fraction", f"{self.val_fraction} is not in [0, 0.9)")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise config_error("data.classes", "class names must be unique")


@dataclass
class AugmentSection:
    """Published augmentations, training split only: multi-scale crop of the video (a random
    scale of the short side from ``crop_scales``, random position, same crop for every frame of a
    window, taken from the frame as the runtime sees it, then the runtime resize) and Gaussian
    noise of ``imu_noise_std`` g on the IMU before the spectrogram (0 keeps the spectrogram cache
    in use).

    Wearable augmentations of ours (:class:`training.augment.ImuAugment`, off at 0): rotation of
    each sensor frame about gravity (``imu_yaw_deg``) and a tilt (``imu_tilt_deg``), a gain
    (``imu_gain``), a time warp (``imu_time_warp``) and shift (``imu_shift_s``), and sensor
    dropout refilled as at run time (``imu_dropout``)."""

    crop_scales: list[float] = field(default_factory=lambda: [1.0, 0.875, 0.75, 0.66])
    imu_noise_std: float = 0.0
    imu_yaw_deg: float = 0.0
    imu_tilt_deg: float = 0.0
    imu_gain: float = 0.0
    imu_time_warp: float = 0.0
    imu_shift_s: float = 0.0
    imu_dropout: float = 0.0

    def validate(self) -> None:
        if not self.crop_scales or not all(0.1 <= s <= 1.0 for s in self.crop_scales):
            raise config_error("augment.crop_scales", "needs scales in [0.1, 1]")
        for name in ("imu_noise_std", "imu_yaw_deg", "imu_tilt_deg", "imu_shift_s"):
            if getattr(self, name) < 0:
                raise config_error(f"augment.{name}", "must be >= 0")
        for name in ("imu_gain", "imu_time_warp", "imu_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise config_error(f"augment.{name}", "must be in [0, 1)")


@dataclass
class TrainSection:
    """Optimisation. Published fine-tune: Adam, lr 5e-5, head ×100, batch 16, 200 epochs,
    MultiStepLR (60, 120, 180) ×0.5, BCE with label smoothing 0.1.

    Best epoch: the highest ``select_metric`` on the validation split, a tie going to the lower
    validation loss. ``patience``: stop after that many epochs without a better best epoch
    (0: run every epoch). ``num_threads``: torch threads of the run and of its spectrogram
    cache (0: the idle cores, see :func:`training.threads.pick_threads`).
    """

    epochs: int = 200
    batch_size: int = 16
    accum_steps: int = 1
    optimizer: str = "adam"
    lr: float = 5e-5
    head_lr_mult: float = 100.0
    weight_decay: float = 5e-7
    betas: list[float] = field(default_factory=lambda: [0.95, 0.999])
    schedule: str = "multistep"
    milestones: list[int] = field(default_factory=lambda: [60, 120, 180])
    gamma: float = 0.5
    warmup_steps: int = 0
    loss: str = "bce"
    label_smoothing: float = 0.1
    precision: str = "fp32"
    grad_clip: float = 0.0
    max_steps_per_epoch: int = 0
    #: a training set smaller than this is visited several times per epoch, each visit freshly
    #: augmented, so a few dozen windows still get enough optimizer steps (0: once)
    min_windows_per_epoch: int = 0
    select_metric: str = "accuracy"
    patience: int = 0
    device: str = "auto"
    num_threads: int = 0
    num_workers: int = 0
    checkpoint_every: int = 1

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "accum_steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise config_error(f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        choices = (
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("loss", LOSSES),
            ("precision", PRECISIONS),
            ("select_metric", SELECT_METRICS),
        )
        for name, allowed in choices:
            if getattr(self, name) not in allowed:
                raise config_error(
                    f"train.{name}",
                    f"{getattr(self, name)!r} is not one of {', '.join(allowed)}",
                )
        if not self.lr > 0 or not self.head_lr_mult > 0:
            raise config_error("train.lr", "lr and head_lr_mult must be > 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise config_error("train.betas", f"needs two values in [0, 1), got {self.betas}")
        if sorted(self.milestones) != list(self.milestones) or not 0 < self.gamma <= 1:
            raise config_error(
                "train.milestones", "milestones must increase and gamma be in (0, 1]"
            )
        if not 0.0 <= self.label_smoothing < 1.0:
            raise config_error("train.label_smoothing", f"{self.label_smoothing} is not in [0, 1)")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise config_error("train.device", f"{self.device!r}: use auto, cpu, cuda or cuda:N")
        for name in ("warmup_steps", "max_steps_per_epoch", "num_threads", "num_workers",
                     "patience", "min_windows_per_epoch"):  # fmt: skip
            if getattr(self, name) < 0:
                raise config_error(f"train.{name}", "must be >= 0")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise config_error("train.weight_decay", "weight_decay and grad_clip must be >= 0")


@dataclass
class StageSection:
    """The masked-pretraining stage a fine-tune recipe runs first, in the same ``train.py``
    command (``epochs`` 0: none): the recipe's model pretrained (:mod:`training.stages`; IMU
    branch alone in ``imu_only`` mode) on every training and validation session, labelled or
    not (never a test source), for ``epochs`` at ``lr`` with warm-up and cosine, then fine-tuned
    from its encoder."""

    epochs: int = 0
    lr: float = 1.0e-3
    batch_size: int = 32
    warmup_steps: int = 20

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.warmup_steps < 0 or not self.lr > 0:
            raise config_error("pretrain", "needs epochs >= 0, batch_size >= 1, lr > 0")


@dataclass
class TrainConfig:
    """The whole recipe. ``run_dir`` holds checkpoints, logs and caches; the artifact goes to
    ``output`` (default ``<run_dir>/model``)."""

    objective: str = "finetune"
    seed: int = 0
    run_dir: str = "runs/default"
    output: str | None = None
    model: ModelSection = field(default_factory=ModelSection)
    imu: ImuSection = field(default_factory=ImuSection)
    video: VideoSection = field(default_factory=VideoSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    train: TrainSection = field(default_factory=TrainSection)
    pretrain: StageSection = field(default_factory=StageSection)
    align: AlignSection = field(default_factory=AlignSection)
    interval: IntervalSection = field(default_factory=IntervalSection)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise config_error(
                "objective", f"{self.objective!r} is not one of {', '.join(OBJECTIVES)}"
            )
        if self.seed < 0:
            raise config_error("seed", "must be >= 0")
        self.model.validate()
        self.imu.validate(self.objective)
        self.video.validate()
        self.data.validate()
        self.augment.validate()
        self.train.validate()
        self.pretrain.validate()
        if self.pretrain.epochs and (self.objective != "finetune" or self.model.init != "scratch"):
            raise config_error(
                "pretrain.epochs", "a pretraining stage starts a fine-tune recipe from scratch"
            )
        self.align.validate()
        if self.objective == "interval":
            self.interval.validate()

    @property
    def video_span_s(self) -> float:
        """Seconds of video a window's frames are spread over."""
        return self.video.span_s if self.video.span_s is not None else self.imu.window_s

    @property
    def output_dir(self) -> Path:
        return Path(self.output) if self.output else Path(self.run_dir) / "model"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict."""
        return dataclasses.asdict(self)


def load_config(path: str | Path | None, sets: list[str] | None = None) -> TrainConfig:
    """Read a YAML recipe (or start from defaults), apply ``--set`` items, validate."""
    doc: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: config file not found; pass --config configs/train/X.yaml")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            first = str(exc).strip().splitlines()[0]
            raise InputError(f"{p}: not valid YAML ({first})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise InputError(f"{p}: a recipe must be a YAML mapping of sections")
        doc = loaded or {}
    for item in sets or []:
        if "=" not in item:
            raise InputError(f"--set {item}: expected key=value (e.g. train.lr=1e-4)")
        key, raw = item.split("=", 1)
        key = key.strip()
        check_key(TrainConfig, key)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        set_dotted(doc, key, value)
    try:
        return build(TrainConfig, doc, "")
    except TypeError as exc:  # a dataclass refused its arguments
        raise InputError(f"config: {exc}") from None
