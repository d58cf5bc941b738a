"""The vocabulary editor: with a language-aligned model, the user types the actions to
recognise (one prompt a line, the ``--vocabulary`` syntax) and applies them to the running
pipeline — no retraining, no restart of the sensors or the replay.

:class:`VocabularyControl` is the non-Qt part: it parses the text, embeds the prompts with the
text encoder in a worker thread (the first use loads the encoder: a fraction of a second) and
hands the finished vocabulary to the recogniser's scorer, which scores the next window with it.
:class:`VocabularyEditor` is the widget; the window's 30 Hz timer calls :meth:`poll`, the only
place it changes, so the GUI thread only paints.
"""

from __future__ import annotations

import logging
import queue
import threading

from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from evimae_stream.errors import EvimaeError

log = logging.getLogger(__name__)


class VocabularyControl:
    """Apply vocabularies to a composer's recogniser (thread-safe; see the module doc)."""

    def __init__(self, composer) -> None:
        self.composer = composer
        self.model, self.meta = composer.model.model, composer.model.meta
        self.text = ""
        self._results: queue.Queue[str] = queue.Queue()

    def apply(self, text: str) -> None:
        """Parse and embed ``text`` in a worker thread; :meth:`results` says how it went."""
        threading.Thread(target=self._build, args=(text,), name="vocabulary", daemon=True).start()

    def apply_now(self, text: str) -> str:
        """Parse, embed and apply ``text`` in this thread (the command line's ``--vocabulary``)."""
        self._build(text)
        return self._results.get()

    def clear(self) -> None:
        """Back to the model's own classes."""
        self.composer.recognizer.language = None
        self.text = ""
        self._results.put("vocabulary cleared: recognising the model's classes")

    def _build(self, text: str) -> None:
        from evimae_stream.language.scorer import LanguageScorer, check_encoder
        from evimae_stream.language.text import TextCache
        from evimae_stream.language.vocabulary import build_vocabulary, parse_vocabulary

        where = "vocabulary"
        try:
            spec = parse_vocabulary(text.replace("\n", ";"), where)
            check_encoder(self.meta, where)
            vocab = build_vocabulary(spec, TextCache(where=where))
        except EvimaeError as exc:
            self._results.put(str(exc))
            return
        scorer = self.composer.recognizer.language
        if scorer is None:
            self.composer.recognizer.language = LanguageScorer(self.model, vocab)
        else:
            scorer.set_vocabulary(vocab)
        self.text = text
        self._results.put(f"vocabulary: {', '.join(vocab.names)}")

    def results(self) -> list[str]:
        """Messages of the applies that finished since the last call."""
        out = []
        while not self._results.empty():
            out.append(self._results.get())
        return out


def vocabulary_control(composer) -> VocabularyControl | None:
    """The control of a composer whose model is language-aligned (else None: no editor)."""
    meta = composer.model.meta
    return VocabularyControl(composer) if meta is not None and meta.aligned else None


class VocabularyEditor(QWidget):
    """A prompt list, Apply and Clear, and the last result line."""

    def __init__(self, control: VocabularyControl, on_message=None) -> None:
        super().__init__()
        self.control = control
        self.on_message = on_message
        self.edit = QPlainTextEdit(control.text.replace(";", "\n"))
        self.edit.setPlaceholderText("one action a line, e.g.\nstirring a pot\nchopping vegetables")
        self.edit.setMaximumHeight(90)
        self.apply_button = QPushButton("Apply")
        self.clear_button = QPushButton("Model classes")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.apply_button.clicked.connect(lambda: self.control.apply(self.edit.toPlainText()))
        self.clear_button.clicked.connect(self.control.clear)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.clear_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)
        lay.addLayout(buttons)
        lay.addWidget(self.result)

    def poll(self) -> None:
        """Show what the finished applies said (called from the window's timer)."""
        for text in self.control.results():
            self.result.setText(text)
            if self.on_message is not None:
                self.on_message(text)
