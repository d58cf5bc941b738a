"""Facts about the published datasets that the model and its artifacts depend on (DESIGN §5–§6).

One place for class lists, normalisation constants and window geometry, so conversion,
preprocessing, readers and training agree.
"""

from __future__ import annotations

from dataclasses import dataclass

#: WEAR's 18 activity classes in label-id order (0–17).
WEAR_CLASSES: tuple[str, ...] = (
    "jogging",
    "jogging (rotating arms)",
    "jogging (skipping)",
    "jogging (sidesteps)",
    "jogging (butt-kicks)",
    "stretching (triceps)",
    "stretching (lunging)",
    "stretching (shoulders)",
    "stretching (hamstrings)",
    "stretching (lumbar rotation)",
    "push-ups",
    "push-ups (complex)",
    "sit-ups",
    "sit-ups (complex)",
    "burpees",
    "lunges",
    "lunges (complex)",
    "bench-dips",
)


@dataclass(frozen=True)
class DatasetProfile:
    """How a published model saw its data: IMU rate and window, spectrogram normalisation, and
    its class names when they are fixed (None: they come from the release's label file).

    ``norm_mean``/``norm_std`` are the fine-tuning pair (what a fine-tuned model, and so the
    runtime, uses); the published pretraining normalised with its own pair,
    ``pretrain_norm_mean``/``pretrain_norm_std``.
    """

    name: str
    imu_rate_hz: float
    window_samples: int
    norm_mean: float
    norm_std: float
    num_classes: int
    metric: str
    pretrain_norm_mean: float
    pretrain_norm_std: float
    classes: tuple[str, ...] | None = None

    @property
    def window_s(self) -> float:
        """IMU window length in seconds."""
        return self.window_samples / self.imu_rate_hz


#: The published EVI-MAE fine-tuning set-ups: WEAR clips are 250 samples at 50 Hz,
#: CMU-MMAC clips 150 samples at 30 Hz (DESIGN §5); normalisation from DESIGN §6 (fine-tuning
#: pair, then the pretraining pair of egs/release/pretrain_*.sh).
PROFILES: dict[str, DatasetProfile] = {
    "wear": DatasetProfile(
        "wear", 50.0, 250, -51.17, 26.19, 18, "accuracy", -54.33, 26.04, WEAR_CLASSES
    ),
    "cmummac": DatasetProfile("cmummac", 30.0, 150, -70.84, 23.44, 32, "mAP", -69.8, 23.5),
}
