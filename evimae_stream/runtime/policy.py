"""The missing-modality policy (DESIGN §3): what a window can still be used for.

- camera missing → ``imu_only``;
- some IMUs missing → each missing slot is filled with an available IMU (its mirror on the other
  side first, then the other limb on the same side, then any) and the fill is reported;
- all IMUs missing → ``video_only`` where the model supports it;
- otherwise no prediction, with the reason.

A mode the model does not support is never chosen: with both modalities present but no
``multimodal`` support the model's IMU-only (then video-only) mode is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from evimae_stream.types import PLACEMENTS

#: the IMU that stands in for a missing one, best first: its mirror on the other side, the other
#: limb on the same side, then the last one
FILL_ORDER: dict[str, tuple[str, ...]] = {
    "left_arm": ("right_arm", "left_leg", "right_leg"),
    "right_arm": ("left_arm", "right_leg", "left_leg"),
    "left_leg": ("right_leg", "left_arm", "right_arm"),
    "right_leg": ("left_leg", "right_arm", "left_arm"),
}


@dataclass(frozen=True)
class Plan:
    """What to run for one window.

    ``mode``: the forward mode, or None (no prediction; ``reason`` says why).
    ``slots``: placement → the placement whose data fills it (itself when present); empty
    when the IMUs are not used. ``filled``: the slots that borrowed another IMU's data.
    ``modalities``: "imu" and/or "video" actually used.
    """

    mode: str | None
    slots: dict[str, str] = field(default_factory=dict)
    filled: dict[str, str] = field(default_factory=dict)
    modalities: tuple[str, ...] = ()
    reason: str | None = None


def fill_slots(present: Iterable[str], fill_missing: bool = True) -> dict[str, str] | None:
    """Slot → the placement whose samples feed it (itself when present), or None when no
    placement is present, or a slot is missing and ``fill_missing`` is off.

    Each missing slot takes the first present placement of its :data:`FILL_ORDER`: one sensor
    feeds all four slots (the published one-IMU recipe). Used by the runtime's policy and by
    training, so a model is trained on the fills it sees live.
    """
    have = set(present)
    if not have:
        return None
    slots = {}
    for slot in PLACEMENTS:
        if slot in have:
            slots[slot] = slot
        elif fill_missing:
            slots[slot] = next(p for p in FILL_ORDER[slot] if p in have)
        else:
            return None
    return slots


def plan_window(
    imu_present: dict[str, bool],
    video_present: bool,
    modes: tuple[str, ...] | list[str],
    missing: dict[str, str] | None = None,
) -> Plan:
    """Apply the policy to one window's available streams and the model's supported modes."""
    available = [p for p in PLACEMENTS if imu_present.get(p)]
    missing = missing or {}
    use_imu = bool(available) and ("imu_only" in modes or "multimodal" in modes)
    if video_present and use_imu and "multimodal" in modes:
        mode = "multimodal"
    elif use_imu and "imu_only" in modes:
        mode = "imu_only"
    elif video_present and "video_only" in modes:
        mode = "video_only"
    else:
        return Plan(None, reason=_why_not(available, video_present, modes, missing))
    slots: dict[str, str] = {}
    if mode != "video_only":
        slots = fill_slots(available) or {}
    filled = {slot: src for slot, src in slots.items() if slot != src}
    modalities = {"multimodal": ("imu", "video"), "imu_only": ("imu",), "video_only": ("video",)}
    return Plan(mode, slots, filled, modalities[mode])


def _why_not(available, video_present, modes, missing) -> str:
    if not available and not video_present:
        details = "; ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
        return "no usable sensor data" + (f" ({details})" if details else "")
    have = "IMU" if available else "video"
    return f"only {have} data, and the model supports only {', '.join(modes)}"
