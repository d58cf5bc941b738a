"""Sensor health: one table row per stream; a stream that is not up (down, stale, lagging) is
red with its reason as tooltip. The table is exactly as tall as its rows, so the plots above it
get the rest. Rates are the one rate of :mod:`evimae_stream.health` (session time in a replay),
times are in seconds, and the clock offset is shown only for a live sensor with its own clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
)

from evimae_stream.health import StreamHealth

COLUMNS: tuple[str, ...] = (
    "stream",
    "link",
    "rate Hz",
    "samples",
    "drops",
    "bad frames",
    "clock offset s",
    "drift ppm",
    "reconnects",
    "age s",
)
#: row height (px)
ROW_H = 22
DOWN_BG = QColor("#c62828")
DOWN_FG = QColor("#ffffff")
UP_BG = QColor("#e8f5e9")
UP_FG = QColor("#1b1b1b")


def offset_text(offset_s: float | None) -> str:
    """Host minus device time of a sensor clock, in seconds to the millisecond; "—" where no
    offset means anything (no device clock, a replay)."""
    return "—" if offset_s is None else f"{offset_s:+.3f}"


def row_texts(h: StreamHealth) -> list[str]:
    """The cells of one stream's row."""
    age = "—" if h.last_sample_age_s is None else f"{h.last_sample_age_s:.2f}"
    link = "up" if h.up else f"DOWN ({h.state})" if h.state not in ("up", "down") else "DOWN"
    return [
        h.name,
        link,
        f"{h.rate_hz:.1f}",
        str(h.samples),
        str(h.drops),
        str(h.bad_frames),
        offset_text(h.clock_offset_s),
        f"{h.drift_ppm:+.0f}",
        str(h.reconnects),
        age,
    ]


class HealthPanel(QTableWidget):
    """The health table; :meth:`update_health` rewrites the cells (rows are created once per
    stream name: up front for ``streams``, else when a stream first reports)."""

    def __init__(self, streams: Sequence[str] = (), parent=None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(COLUMNS))
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setDefaultSectionSize(ROW_H)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.rows: dict[str, int] = {}
        for name in streams:
            self._add_row(name)
        self._fit_height()

    def _add_row(self, name: str) -> int:
        row = self.rowCount()
        self.insertRow(row)
        for col in range(len(COLUMNS)):
            item = QTableWidgetItem("—" if col else name)
            if col >= 2:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.setItem(row, col, item)
        self.rows[name] = row
        return row

    def _fit_height(self) -> None:
        """As tall as the header and the rows (at least one row), no scrolling."""
        header = self.horizontalHeader().sizeHint().height()
        rows = max(self.rowCount(), 1) * ROW_H
        self.setFixedHeight(header + rows + 2 * self.frameWidth())

    def update_health(self, health: Mapping[str, StreamHealth]) -> None:
        """Show ``health`` (stream name → StreamHealth)."""
        for name, h in health.items():
            row = self.rows.get(name)
            if row is None:
                row = self._add_row(name)
                self._fit_height()
            bg, fg = (UP_BG, UP_FG) if h.up else (DOWN_BG, DOWN_FG)
            tip = "" if h.up else (h.reason or "down")
            for col, text in enumerate(row_texts(h)):
                item = self.item(row, col)
                if item.text() != text:
                    item.setText(text)
                if item.toolTip() != tip:
                    item.setToolTip(tip)
                if item.background().color() != bg:
                    item.setBackground(QBrush(bg))
                    item.setForeground(QBrush(fg))

    def cell(self, stream: str, column: str) -> str:
        """The text in ``stream``'s row under ``column`` (for checks and tests)."""
        return self.item(self.rows[stream], COLUMNS.index(column)).text()

    def is_down(self, stream: str) -> bool:
        """Whether ``stream``'s row is shown as down (red)."""
        return self.item(self.rows[stream], 0).background().color() == DOWN_BG

    def tooltip(self, stream: str) -> str:
        """The tooltip of ``stream``'s row (the down reason)."""
        return self.item(self.rows[stream], 0).toolTip()
