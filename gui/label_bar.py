"""The label bar: the user's action names on buttons and number keys, while the monitor runs.

A button (or its number key, ``1``–``9``) starts that action; pressing it again, another one, or
the idle button (``0``) ends it. The bar only forwards presses to the run's
:class:`~evimae_stream.runtime.labelling.Labeller`, which stamps them on the run's host clock and
writes them to the recording (when one is running); the bar shows the labeller's state on each
refresh of the window, so it never disagrees with what was written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from evimae_stream.colours import class_colour
from evimae_stream.errors import EvimaeError
from evimae_stream.runtime.labelling import IDLE_KEY, MAX_KEYS, Labeller

log = logging.getLogger(__name__)


class LabelBar(QWidget):
    """``buttons``: one checkable button per action (in the labeller's order), ``idle_button``,
    ``state``: what is being labelled. :meth:`handle_key` takes the window's key presses."""

    def __init__(self, labeller: Labeller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labeller = labeller
        self.on_message: Callable[[str], None] = lambda text: log.info("%s", text)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QLabel("label:"))
        self.buttons: list[QPushButton] = []
        classes = labeller.classes
        for i, name in enumerate(classes):
            key = f"{i + 1} " if i < MAX_KEYS else ""
            button = QPushButton(f"{key}{name}")
            button.setCheckable(True)
            colour = class_colour(name, classes)
            button.setStyleSheet(
                f"QPushButton {{ border-left: 6px solid {colour}; padding: 3px 8px; }}"
                f"QPushButton:checked {{ background: {colour}; color: white; font-weight: bold; }}"
            )
            button.clicked.connect(lambda _=False, n=name: self._call(lambda: labeller.press(n)))
            button.setMinimumWidth(button.sizeHint().width() + 16)  # room for the bold checked text
            layout.addWidget(button)
            self.buttons.append(button)
        self.idle_button = QPushButton(f"{IDLE_KEY} idle")
        self.idle_button.clicked.connect(lambda: self._call(labeller.idle))
        layout.addWidget(self.idle_button)
        self.state = QLabel("")
        layout.addWidget(self.state, 1)
        self.update_state()

    def _call(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except (EvimaeError, OSError, ValueError) as exc:  # a full disk must not close the window
            self.on_message(f"label: {exc}")
        self.update_state()

    def handle_key(self, text: str) -> bool:
        """A key press of the window: True when it was a label key."""
        if len(text) != 1 or not text.isdigit():
            return False
        handled = [False]
        self._call(lambda: handled.__setitem__(0, self.labeller.key(text)))
        return handled[0]

    def update_state(self) -> None:
        """Show the open segment: its button checked, its start time."""
        current = self.labeller.current
        open_label = current[0] if current is not None else None
        for button, name in zip(self.buttons, self.labeller.classes, strict=True):
            if button.isChecked() != (name == open_label):
                button.setChecked(name == open_label)
        if current is None:
            self.state.setText("idle")
        else:
            since = (current[1] - self.labeller.origin_ns) / 1e9
            self.state.setText(f"● {open_label} since {since:.1f} s")
