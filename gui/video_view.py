"""The camera image: the newest RGB frame, scaled to the widget keeping its aspect ratio.

The view asks its layout for the height that fits the image at the width it gets
(``heightForWidth``), so a camera of any aspect ratio fills its column without black bars; the
space it does not need goes to the panel under it."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRect, QSize, Qt
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


#: height / width assumed before the first frame (most cameras: 4:3)
DEFAULT_ASPECT = 3 / 4
#: the view is never smaller than this (px)
MIN_W, MIN_H = 240, 135


class VideoView(QWidget):
    """Paints the newest camera frame (a frame is converted once, when it is new)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(MIN_W, MIN_H)
        policy = QSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.aspect = DEFAULT_ASPECT
        self.image: QImage | None = None
        self.frame_t_ns: int | None = None
        self.frames_shown = 0
        self.placeholder = "no camera"

    def set_frame(self, t_ns: int, rgb: np.ndarray) -> bool:
        """Show the frame stamped ``t_ns``; returns False when it is the one already shown."""
        if t_ns == self.frame_t_ns:
            return False
        self.image = rgb_to_qimage(rgb)
        aspect = self.image.height() / max(self.image.width(), 1)
        if abs(aspect - self.aspect) > 1e-3:  # a new camera shape: ask for a new height
            self.aspect = aspect
            self.updateGeometry()
        self.frame_t_ns = int(t_ns)
        self.frames_shown += 1
        self.update()
        return True

    def hasHeightForWidth(self) -> bool:  # Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # Qt override
        """The height that shows the whole image at ``width`` without bars."""
        return max(MIN_H, round(width * self.aspect))

    def sizeHint(self) -> QSize:  # Qt override
        return QSize(480, self.heightForWidth(480))

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
