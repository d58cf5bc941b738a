"""The current action in large type with its score, and a top-5 bar chart (QProgressBars)."""

from __future__ import annotations

from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QGridLayout, QLabel, QProgressBar, QVBoxLayout, QWidget

from evimae_stream.runtime.events import Prediction

TOP_K = 5
#: progress bars count in thousandths of the score
_SCALE = 1000


class PredictionPanel(QWidget):
    """``action`` (big label), ``score``, ``details`` (modalities, latency), and ``bars``: five
    (name label, QProgressBar) rows, best first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        self.action = QLabel("waiting for predictions")
        font = QFont()
        font.setPointSize(22)
        font.setBold(True)
        self.action.setFont(font)
        self.action.setWordWrap(True)
        self.score = QLabel("")
        score_font = QFont()
        score_font.setPointSize(13)
        self.score.setFont(score_font)
        self.details = QLabel("")
        self.details.setStyleSheet("color: #555")
        for label in (self.score, self.details):
            label.setWordWrap(True)  # a long reason must not widen the window
        layout.addWidget(self.action)
        layout.addWidget(self.score)
        layout.addWidget(self.details)
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(3)
        self.bars: list[tuple[QLabel, QProgressBar]] = []
        for i in range(TOP_K):
            name = QLabel("")
            name.setMinimumWidth(150)
            bar = QProgressBar()
            bar.setRange(0, _SCALE)
            bar.setValue(0)
            bar.setFormat("")
            bar.setTextVisible(True)
            bar.setMaximumHeight(18)
            policy = bar.sizePolicy()
            policy.setRetainSizeWhenHidden(True)  # no layout jumps when rows come and go
            bar.setSizePolicy(policy)
            bar.setVisible(False)
            grid.addWidget(name, i, 0)
            grid.addWidget(bar, i, 1)
            self.bars.append((name, bar))
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.current: Prediction | None = None

    def show_prediction(self, pred: Prediction) -> None:
        """Show one prediction (or why there is none)."""
        self.current = pred
        if pred.label is None:
            self.action.setText("no prediction")
            self.action.setStyleSheet("color: #888")
            self.score.setText(pred.reason or "")
        else:
            self.action.setText(pred.label)
            self.action.setStyleSheet("color: #111")
            self.score.setText(f"score {pred.score:.2f}")
        parts = []
        if pred.modalities:
            parts.append(" + ".join(pred.modalities))
        if pred.latency_ms is not None:
            parts.append(f"latency {pred.latency_ms:.0f} ms")
        parts.append(f"t = {pred.t_s:.1f} s")
        self.details.setText("   ·   ".join(parts))
        for i, (name, bar) in enumerate(self.bars):
            if i < len(pred.topk):
                label, score = pred.topk[i]
                name.setText(label)
                bar.setValue(round(min(max(score, 0.0), 1.0) * _SCALE))
                bar.setFormat(f"{score:.2f}")
            else:
                name.setText("")
                bar.setValue(0)
                bar.setFormat("")
            bar.setVisible(i < len(pred.topk))

    def topk_shown(self) -> list[tuple[str, float]]:
        """(name, bar value as a score) of the rows in use, for checks and tests."""
        return [(name.text(), bar.value() / _SCALE) for name, bar in self.bars if name.text()]
