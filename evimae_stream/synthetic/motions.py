"""The action library: how each body part moves during each action, as formulas of time.

Frame: x forward, y to the wearer's left, z up, metres; origin on the floor below the pelvis
(a treadmill frame: walking and jogging move the scene, not the body, so the IMUs see no
constant-velocity drift). Bodies: ``head`` and the four IMU placements (wrists ``left_arm``,
``right_arm``; ankles ``left_leg``, ``right_leg``). Each body has a position and Euler angles
(yaw about z, pitch about y — positive tips the x axis down —, roll about x) of its neutral frame:
for a wrist x points along the forearm to the hand and z out of the watch face; for an ankle and
the head x points forward and z up when standing.

A motion function gets time ``T``, the action's phase ``ph`` (radians, frequency-modulated per
repetition) and amplitude ``amp`` (≈1, modulated per repetition), all :class:`~.jet.Jet`, plus
the wearer's :class:`Person`, and returns ``{body: (position xyz, angles yaw/pitch/roll)}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from evimae_stream.synthetic.jet import Jet, cos, sin

BODIES: tuple[str, ...] = ("head", "left_arm", "right_arm", "left_leg", "right_leg")

Vec = tuple["Jet | float", "Jet | float", "Jet | float"]
BodyPose = tuple[Vec, Vec]
Motion = Callable[[Jet, Jet, Jet, "Person"], dict[str, BodyPose]]

#: forearm pitch of a relaxed hanging arm (rad; x axis pointing down and a little forward)
HANG = 1.35


@dataclass(frozen=True)
class Person:
    """Per-wearer variation: body height scale, tempo and vigour of movements."""

    height: float = 1.0
    tempo: float = 1.0
    vigor: float = 1.0


@dataclass(frozen=True)
class ActionSpec:
    """One action: its motion, base repetition frequency, walking speed and scene props.

    ``props``: objects the head camera shows (``table``, ``pan``, ``board``, ``knife``,
    ``spoon``); ``wall_x``: distance of the wall in front (m); ``speed``: forward speed (m/s)
    that scrolls the floor.
    """

    name: str
    motion: Motion
    freq_hz: float
    speed: float = 0.0
    props: frozenset[str] = frozenset()
    wall_x: float = 3.0


def _lerp(a: float, b: float, r: Jet) -> Jet:
    return a + (b - a) * r


def _standing_legs(sway: Jet | float = 0.0) -> dict[str, BodyPose]:
    return {
        "left_leg": ((0.0, 0.11 + sway, 0.08), (0.0, 0.0, 0.0)),
        "right_leg": ((0.0, -0.11 + sway, 0.08), (0.0, 0.0, 0.0)),
    }


def _hanging_arm(side: float, p: Person, swing: Jet | float = 0.0) -> BodyPose:
    return (
        (0.03 + 0.1 * swing, side * 0.22, 0.80 * p.height),
        (0.0, HANG - 0.35 * swing, 0.0),
    )


def idle(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Standing, breathing, slowly looking around."""
    breath = 0.004 * sin(2 * math.pi * 0.25 * T)
    sway = 0.008 * sin(0.7 * ph + 1.0)
    look = 0.3 * amp * sin(ph)
    return {
        "head": ((0.05, sway, 1.62 * p.height + breath), (look, 0.17 + 0.06 * sin(0.6 * ph), 0.0)),
        "left_arm": _hanging_arm(1.0, p, 0.05 * sin(1.3 * ph)),
        "right_arm": _hanging_arm(-1.0, p, 0.05 * sin(1.1 * ph + 2.0)),
        **_standing_legs(sway),
    }


def _gait(ph: Jet, amp: Jet, stride: float, lift: float, pitch: float, side: float) -> BodyPose:
    return (
        (stride * amp * sin(ph), side * 0.11, 0.08 + lift * amp * (1.0 + cos(ph))),
        (0.0, pitch * amp * sin(ph + 0.5), 0.0),
    )


def walking(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Walking: legs swing in antiphase, arms swing against the legs, the head bobs."""
    bob = 0.025 * amp * cos(2.0 * ph)
    a = amp * p.vigor
    return {
        "head": ((0.05, 0.0, 1.62 * p.height + bob), (0.06 * sin(ph), 0.25, 0.04 * sin(ph))),
        "left_arm": (
            (0.03 - 0.16 * a * sin(ph), 0.22, 0.80 * p.height + bob),
            (0.0, HANG + 0.3 * a * sin(ph), 0.0),
        ),
        "right_arm": (
            (0.03 + 0.16 * a * sin(ph), -0.22, 0.80 * p.height + bob),
            (0.0, HANG - 0.3 * a * sin(ph), 0.0),
        ),
        "left_leg": _gait(ph, a, 0.28, 0.03, 0.35, 1.0),
        "right_leg": _gait(ph + math.pi, a, 0.28, 0.03, 0.35, -1.0),
    }


def jogging(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Jogging: bent arms pumping, high knee lift, strong vertical bounce."""
    a = amp * p.vigor
    bob = 0.06 * a * cos(2.0 * ph)
    return {
        "head": ((0.08, 0.0, 1.6 * p.height + bob), (0.07 * sin(ph), 0.3, 0.05 * sin(ph))),
        "left_arm": (
            (0.18 - 0.18 * a * sin(ph), 0.2, 1.02 * p.height + bob - 0.06 * a * sin(ph)),
            (0.0, -0.2 + 0.5 * a * sin(ph), 0.0),
        ),
        "right_arm": (
            (0.18 + 0.18 * a * sin(ph), -0.2, 1.02 * p.height + bob + 0.06 * a * sin(ph)),
            (0.0, -0.2 - 0.5 * a * sin(ph), 0.0),
        ),
        "left_leg": _gait(ph, a, 0.35, 0.08, 0.6, 1.0),
        "right_leg": _gait(ph + math.pi, a, 0.35, 0.08, 0.6, -1.0),
    }


def waving(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Waving the raised right hand side to side while looking at it."""
    a = amp * p.vigor
    return {
        "head": ((0.05, 0.0, 1.62 * p.height), (-0.55 + 0.03 * sin(ph), -0.1, 0.0)),
        "left_arm": _hanging_arm(1.0, p),
        "right_arm": (
            (0.35, -0.3 + 0.12 * a * sin(ph), 1.68 * p.height + 0.02 * a * cos(2.0 * ph)),
            (-0.5 * a * sin(ph), -1.2, 0.35 * a * sin(ph + 0.3)),
        ),
        **_standing_legs(),
    }


def stirring(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Stirring a pan on a table: right hand circles, left hand holds the handle."""
    a = amp * p.vigor
    return {
        "head": ((0.05, 0.0, 1.6 * p.height), (-0.05 + 0.04 * sin(0.3 * ph), 0.75, 0.0)),
        "left_arm": (
            (0.36 + 0.004 * sin(2.0 * ph + 1.0), 0.24, 0.97),
            (-0.5, 0.3, 0.2),
        ),
        "right_arm": (
            (0.36 + 0.06 * a * cos(ph), -0.14 + 0.06 * a * sin(ph), 1.02),
            (0.2 + 0.25 * a * sin(ph), 0.45 + 0.1 * a * cos(ph), 0.15 * a * cos(ph)),
        ),
        **_standing_legs(0.01 * sin(0.2 * ph)),
    }


def chopping(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Chopping on a board: the right hand strikes down fast, the left hand holds the food."""
    a = amp * p.vigor
    stroke = 0.055 * a * (sin(ph) + 0.3 * sin(2.0 * ph))
    return {
        "head": ((0.05, 0.0, 1.6 * p.height), (0.0, 0.8, 0.0)),
        "left_arm": ((0.36 + 0.015 * sin(0.05 * ph), 0.1, 0.94), (-0.6, 0.35, 0.1)),
        "right_arm": (
            (0.34 + 0.02 * sin(0.1 * ph), -0.16, 1.0 + stroke),
            (0.1, 0.3 - 3.0 * stroke, 0.0),
        ),
        **_standing_legs(),
    }


def push_ups(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Push-ups: body horizontal, chest lowers and rises, hands and toes on the floor."""
    a = amp * p.vigor
    chest = 0.38 + 0.15 * a * cos(ph)
    return {
        "head": ((0.95, 0.0, chest + 0.1), (0.0, 1.35 - 0.1 * a * cos(ph), 0.0)),
        "left_arm": ((0.8, 0.28, 0.05), (-0.3, 1.2 + 0.25 * a * cos(ph), 0.3)),
        "right_arm": ((0.8, -0.28, 0.05), (0.3, 1.2 + 0.25 * a * cos(ph), -0.3)),
        "left_leg": ((-0.55, 0.12, 0.1 + 0.02 * a * cos(ph)), (0.0, 1.4 + 0.12 * a * cos(ph), 0.0)),
        "right_leg": (
            (-0.55, -0.12, 0.1 + 0.02 * a * cos(ph)),
            (0.0, 1.4 + 0.12 * a * cos(ph), 0.0),
        ),
    }


def jumping_jacks(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Jumping jacks: arms sweep overhead in the frontal plane, legs spread, two hops a cycle."""
    a = amp * p.vigor
    open_ = 0.5 * (1.0 - cos(ph))
    theta = 0.2 + 1.2 * a * open_ * 2.0  # arm abduction from hanging, rad
    bob = 0.06 * a * 0.5 * (1.0 - cos(2.0 * ph))
    arm = 0.62 * p.height
    shoulder_z = 1.42 * p.height + bob
    arms = {
        name: (
            (0.05, side * (0.19 + arm * sin(theta)), shoulder_z - arm * cos(theta)),
            (side * math.pi / 2, math.pi / 2 - theta, 0.0),
        )
        for name, side in (("left_arm", 1.0), ("right_arm", -1.0))
    }
    legs = {
        name: (
            (0.0, side * (0.11 + 0.18 * a * open_), 0.08 + bob),
            (0.0, 0.1 * sin(2.0 * ph), -side * 0.3 * a * open_),
        )
        for name, side in (("left_leg", 1.0), ("right_leg", -1.0))
    }
    return {"head": ((0.05, 0.0, 1.62 * p.height + bob), (0.0, 0.15, 0.0)), **arms, **legs}


def reaching(T: Jet, ph: Jet, amp: Jet, p: Person) -> dict[str, BodyPose]:
    """Reaching to a shelf above the head with the right hand and back, rising on the toes."""
    r = 0.5 * (1.0 - cos(ph)) * amp
    return {
        "head": ((0.05, 0.0, 1.62 * p.height + 0.03 * r), (-0.1, _lerp(0.15, -0.45, r), 0.0)),
        "left_arm": _hanging_arm(1.0, p),
        "right_arm": (
            (_lerp(0.05, 0.42, r), _lerp(-0.22, -0.12, r), _lerp(0.8, 1.85, r) * p.height),
            (0.0, _lerp(HANG, -0.9, r), 0.0),
        ),
        "left_leg": ((0.0, 0.11, 0.08 + 0.03 * r), (0.0, -0.15 * r, 0.0)),
        "right_leg": ((0.0, -0.11, 0.08 + 0.03 * r), (0.0, -0.15 * r, 0.0)),
    }


#: the idle (null) class: standing between actions
IDLE = "idle"

#: every action the wearer can do (idle first), by label
ACTIONS: dict[str, ActionSpec] = {
    s.name: s
    for s in (
        ActionSpec(IDLE, idle, 0.12),
        ActionSpec("walking", walking, 0.9, speed=1.2, wall_x=8.0),
        ActionSpec("jogging", jogging, 1.4, speed=2.8, wall_x=8.0),
        ActionSpec("waving", waving, 1.8),
        ActionSpec("stirring", stirring, 1.0, props=frozenset({"table", "pan", "spoon"})),
        ActionSpec("chopping", chopping, 2.6, props=frozenset({"table", "board", "knife"})),
        ActionSpec("push-ups", push_ups, 0.5),
        ActionSpec("jumping-jacks", jumping_jacks, 0.9),
        ActionSpec("reaching", reaching, 0.3, wall_x=0.75),
    )
}
