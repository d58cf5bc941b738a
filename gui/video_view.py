"""The camera image: the newest RGB frame, scaled to the widget keeping its aspect ratio."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QImage, QPainter
from PyQt6.QtWidgets import QSizePolicy, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage owning a copy of an (H, W, 3) uint8 RGB array."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    arr = np.ascontiguousarray(rgb)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def fit_rect(image_w: int, image_h: int, area: QRect) -> QRect:
    """The largest rectangle of the image's aspect ratio centred in ``area``."""
    if image_w <= 0 or image_h <= 0 or area.width() <= 0 or area.height() <= 0:
        return QRect(area.topLeft(), area.topLeft())
    scale = min(area.width() / image_w, area.height() / image_h)
    w, h = max(1, round(image_w * scale)), max(1, round(image_h * scale))
    x = area.x() + (area.width() - w) // 2
    y = area.y() + (area.height() - h) // 2
    return QRect(x, y, w, h)


class VideoView(QWidget):
    """Paints the newest camera frame (a frame is converted once, when it is new)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(320, 240)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image: QImage | None = None
        self.frame_t_ns: int | None = None
        self.frames_shown = 0
        self.placeholder = "no camera"

    def set_frame(self, t_ns: int, rgb: np.ndarray) -> bool:
        """Show the frame stamped ``t_ns``; returns False when it is the one already shown."""
        if t_ns == self.frame_t_ns:
            return False
        self.image = rgb_to_qimage(rgb)
        self.frame_t_ns = int(t_ns)
        self.frames_shown += 1
        self.update()
        return True

    def clear(self, text: str = "no camera") -> None:
        """Show ``text`` instead of an image."""
        self.image, self.frame_t_ns, self.placeholder = None, None, text
        self.update()

    def image_rect(self) -> QRect:
        """Where the image is drawn inside the widget."""
        if self.image is None:
            return QRect()
        return fit_rect(self.image.width(), self.image.height(), self.rect())

    def paintEvent(self, event) -> None:  # Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(20, 20, 20))
        if self.image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self.image)
        painter.end()
