"""The timeline's segment lane (``--segments``): the monitor drains a source's segment events
and draws each segment once, growing while it is open, on a third lane."""

from __future__ import annotations

import numpy as np
import pytest

from evimae_stream.buffer import BufferConfig, StreamBuffer
from evimae_stream.clock import VirtualClock
from evimae_stream.runtime.segmenter import SegmentEvent
from gui.local_source import LocalSource
from gui.timeline import SEGMENT_Y, Timeline

pytestmark = pytest.mark.gui


def _event(i: int, start: float, end: float, label: str, open_: bool) -> SegmentEvent:
    return SegmentEvent(i, label, start, end, 0.9, open_, end, 10.0, 1.0)


def test_segment_events_draw_one_bar_per_segment_on_their_own_lane(qtbot) -> None:
    tl = Timeline()
    qtbot.addWidget(tl)
    tl.set_classes(["stirring", "walking"])
    assert tl.plot.getAxis("left")._tickLevels[0][0][1] == "predicted"
    tl.add_segment(_event(1, 1.0, 3.0, "stirring", True))
    tl.add_segment(_event(1, 1.0, 6.0, "stirring", False))  # the same segment, closed
    tl.add_segment(_event(2, 6.0, 8.0, "walking", True))
    tl.redraw(8.0)
    opts = tl.segment_item.opts
    np.testing.assert_allclose(opts["x0"], [1.0, 6.0])
    np.testing.assert_allclose(opts["x1"], [6.0, 8.0])
    np.testing.assert_allclose(opts["y0"], [SEGMENT_Y, SEGMENT_Y])
    assert tl.plot.getAxis("left")._tickLevels[0][0][1] == "segments"


def test_a_source_queues_segment_events_for_the_window() -> None:
    src = LocalSource(StreamBuffer(BufferConfig(), VirtualClock(0)))
    src.emit_segment(_event(1, 0.0, 2.0, "stirring", True))
    src.emit_segment(_event(1, 0.0, 3.0, "stirring", False))
    assert [e.open for e in src.pull_segments()] == [True, False]
    assert src.pull_segments() == []
