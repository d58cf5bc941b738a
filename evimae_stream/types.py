"""Small shared vocabulary: placements and stream names, label segments, modalities."""

from __future__ import annotations

from dataclasses import dataclass

#: IMU placements in the order the model's 12 input channels use them (DESIGN §6).
PLACEMENTS: tuple[str, ...] = ("left_arm", "right_arm", "left_leg", "right_leg")

#: Name of the camera stream in counters and ``Window.missing``.
CAMERA = "camera"

#: Axes of one IMU's acceleration, in the model's channel order.
ACC_AXES: tuple[str, ...] = ("ax", "ay", "az")
GYRO_AXES: tuple[str, ...] = ("gx", "gy", "gz")

#: Forward modes of the fine-tune model.
MODES: tuple[str, ...] = ("multimodal", "imu_only", "video_only")


@dataclass(frozen=True)
class Segment:
    """A labelled time span of a session, in seconds from the session start. ``text``: an
    optional free-text narration of the span ("stirring a pot with a spoon"), the language
    objective's text besides the label; empty when the session has none."""

    start_s: float
    end_s: float
    label: str
    text: str = ""

    def __post_init__(self) -> None:
        if not self.end_s >= self.start_s:
            raise ValueError(f"segment {self.label!r}: end {self.end_s} < start {self.start_s}")
