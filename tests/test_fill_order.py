"""The one fill order of missing IMU slots (runtime policy and training), on every missing
pattern."""

from __future__ import annotations

import itertools

import pytest

from evimae_stream.runtime.policy import fill_slots, plan_window
from evimae_stream.types import PLACEMENTS

#: the placement on the same limb of the other side, and the other limb on the same side
MIRROR = {"left_arm": "right_arm", "right_arm": "left_arm", "left_leg": "right_leg",
          "right_leg": "left_leg"}  # fmt: skip
SAME_SIDE = {"left_arm": "left_leg", "right_arm": "right_leg", "left_leg": "left_arm",
             "right_leg": "right_arm"}  # fmt: skip


def test_fill_order_by_hand() -> None:
    assert fill_slots(["right_arm"], True) == dict.fromkeys(PLACEMENTS, "right_arm")
    assert fill_slots(["right_arm"], False) is None
    assert fill_slots(["left_leg", "right_arm"], True)["right_leg"] == "left_leg"
    assert fill_slots(["left_arm", "right_leg"]) == {
        "left_arm": "left_arm",
        "right_arm": "left_arm",  # its mirror
        "left_leg": "right_leg",  # its mirror
        "right_leg": "right_leg",
    }
    # neither the mirror nor the same side: the diagonal
    assert fill_slots(["right_leg"])["left_arm"] == "right_leg"
    assert fill_slots([]) is None and fill_slots([], False) is None
    assert fill_slots(PLACEMENTS, False) == {p: p for p in PLACEMENTS}


@pytest.mark.parametrize(
    "present",
    [c for k in range(1, 5) for c in itertools.combinations(PLACEMENTS, k)],
    ids=lambda c: "+".join(c),
)
def test_fill_order_on_every_missing_pattern(present: tuple[str, ...]) -> None:
    """Mirror first, then the same side, then the diagonal; the runtime's plan uses the same."""
    slots = fill_slots(present)
    for slot in PLACEMENTS:
        if slot in present:
            want = slot
        elif MIRROR[slot] in present:
            want = MIRROR[slot]
        elif SAME_SIDE[slot] in present:
            want = SAME_SIDE[slot]
        else:
            want = next(p for p in present)  # only the diagonal is left
        assert slots[slot] == want, slot
    plan = plan_window(dict.fromkeys(present, True), False, ("imu_only",))
    assert plan.slots == slots
    assert plan.filled == {s: src for s, src in slots.items() if s not in present}
    assert (fill_slots(present, fill_missing=False) is None) == (len(present) < 4)
