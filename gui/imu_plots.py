"""Four IMU plots (one per placement, three axes each) scrolling over the last 10 s.

Curves are created once and updated with ``setData`` from ring snapshots, never per sample, so
the cost per refresh is one copy of 10 s per stream whatever the replay speed. All four plots
share one time reference (the newest sample over the streams) so they line up.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QGridLayout, QLabel, QWidget

from evimae_stream.buffer import StreamBuffer
from evimae_stream.types import PLACEMENTS

#: seconds of history shown
SPAN_S = 10.0
AXIS_COLOURS = ("#e53935", "#43a047", "#1e88e5")
AXIS_NAMES = ("x", "y", "z")
_NS = 1_000_000_000


def placement_title(placement: str) -> str:
    """``left_arm`` → ``left wrist`` (arm = wrist, leg = ankle, as in WEAR)."""
    side, limb = placement.split("_", 1)
    return f"{side} {'wrist' if limb == 'arm' else 'ankle' if limb == 'leg' else limb}"


class ImuPlots(QWidget):
    """A 2×2 grid of PlotWidgets; ``curves[placement]`` holds the three axis curves."""

    def __init__(self, placements: tuple[str, ...] = PLACEMENTS, parent=None) -> None:
        super().__init__(parent)
        self.placements = tuple(placements)
        self.plots: dict[str, pg.PlotWidget] = {}
        self.curves: dict[str, list[pg.PlotDataItem]] = {}
        self.t_end_ns: int | None = None
        self._shown_up: dict[str, bool] = {}
        self._drawn: tuple[int, float] | None = None
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.legend = QLabel(
            "axes: "
            + "&nbsp;&nbsp;".join(
                f'<span style="color:{c}; font-weight:bold">&#9632; {n}</span>'
                for c, n in zip(AXIS_COLOURS, AXIS_NAMES, strict=True)
            )
            + "&nbsp;&nbsp; (g; x: seconds before the newest sample)"
        )
        layout.addWidget(self.legend, 0, 0, 1, 2)
        for i, p in enumerate(PLACEMENTS):
            plot = pg.PlotWidget()
            plot.setBackground("w")
            plot.setTitle(placement_title(p), color="#222", size="10pt")
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setXRange(-SPAN_S, 0.0, padding=0)
            plot.setLabel("left", "g")
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            self.curves[p] = [
                plot.plot(pen=pg.mkPen(c, width=1.5), name=n, skipFiniteCheck=True)
                for c, n in zip(AXIS_COLOURS, AXIS_NAMES, strict=True)
            ]
            if p not in self.placements:
                plot.setTitle(f"{placement_title(p)} (not in rig)", color="#999", size="10pt")
            self.plots[p] = plot
            layout.addWidget(plot, 1 + i // 2, i % 2)

    def update_from(self, buffer: StreamBuffer, time_scale: float = 1.0) -> int | None:
        """Redraw from the rings: the last :data:`SPAN_S` seconds of sensor time before the
        newest sample of any stream, x in seconds relative to it. ``time_scale``: sensor seconds
        per host second (the replay speed; 1 live), so a fast replay still shows 10 s of motion.
        Returns the reference time on the host timeline (None: no data)."""
        if not time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        for p, ring in buffer.imu.items():
            if p in self.plots:
                self._mark(p, ring.up, ring.down_reason)
        newest = [r.newest_ns for r in buffer.imu.values()]
        valid = [t for t in newest if t is not None]
        if not valid:
            return None
        t_end = max(valid)
        if (t_end, time_scale) == self._drawn:
            return t_end  # nothing new (paused, or between samples)
        self._drawn = (t_end, time_scale)
        t0 = t_end - round(SPAN_S * _NS / time_scale)
        for p, ring in buffer.imu.items():
            if p not in self.curves:
                continue
            snap = ring.snapshot(t0, t_end)
            x = (snap.t_ns - t_end).astype(np.float64) * (time_scale / _NS)
            for axis, curve in enumerate(self.curves[p]):
                if axis < snap.values.shape[1]:
                    curve.setData(x, snap.values[:, axis])
        self.t_end_ns = t_end
        return t_end

    def _mark(self, placement: str, up: bool, reason: str | None) -> None:
        if self._shown_up.get(placement) == up:
            return
        self._shown_up[placement] = up
        title = placement_title(placement)
        plot = self.plots[placement]
        if up:
            plot.setTitle(title, color="#222", size="10pt")
            plot.setToolTip("")
        else:
            plot.setTitle(f"{title} — DOWN", color="#c62828", size="10pt")
            plot.setToolTip(reason or "down")
