"""The ``align`` section of a training recipe: the language-alignment objective's weights,
texts and heads (see :mod:`training.align` and :mod:`evimae_stream.model.align`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from training.typed_config import config_error

ALIGN_SELECT = ("zeroshot", "supervised")


@dataclass
class AlignSection:
    """Weights of the ``align`` objective's terms (IMU2CLIP's pairs plus our supervised head):
    ``text_weight`` × InfoNCE(IMU, text), ``video_weight`` × InfoNCE(IMU, video) (0: the video
    encoder is not used at all), ``supervised_weight`` × the fine-tune loss of ``model.mode``
    (0: the classifier head is left untrained).

    Texts: each class's pool is its label through ``label_template`` (``label_texts`` renames a
    label first, e.g. ``{null: "standing still"}``) plus, with ``narrations``, every narration
    (labels.csv's ``text`` column) of its segments in the training sessions; each training
    window draws one text of its class per step. ``hidden``: the projection heads' hidden width
    (0: linear). ``select``: the best epoch by validation ``zeroshot`` accuracy (the classes'
    prompt embeddings) or by the ``supervised`` head's ``train.select_metric``. ``text_cache``:
    where text embeddings are cached (default ``$EVIMAE_TEXT_CACHE`` or ~/.cache).
    """

    text_weight: float = 1.0
    video_weight: float = 1.0
    supervised_weight: float = 1.0
    label_template: str = "{}"
    label_texts: dict[str, str] = field(default_factory=dict)
    narrations: bool = True
    hidden: int = 0
    select: str = "zeroshot"
    text_cache: str | None = None

    def validate(self) -> None:
        weights = (self.text_weight, self.video_weight, self.supervised_weight)
        if min(weights) < 0 or not (self.text_weight > 0 or self.video_weight > 0):
            raise config_error("align", "weights must be >= 0 and text_weight or video_weight > 0")
        if self.label_template.count("{}") != 1:
            raise config_error("align.label_template", "needs exactly one {} for the label")
        if self.hidden < 0:
            raise config_error("align.hidden", "must be >= 0")
        if self.select not in ALIGN_SELECT:
            raise config_error(
                "align.select", f"{self.select!r} is not one of zeroshot, supervised"
            )
        if self.select == "zeroshot" and self.text_weight == 0:
            raise config_error("align.select", "zeroshot selection needs text_weight > 0")
