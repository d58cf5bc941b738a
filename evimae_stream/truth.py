"""A window's ground truth: the one rule training, ``--eval`` and ``evaluate_artifact.py`` share.

**Centre rule**: a window ending at ``t_ref`` and covering ``(t_ref − window_s, t_ref]`` is
labelled with the label whose segment contains its centre ``t_ref − window_s / 2``.

Why the centre and not the label covering most of the window:

- it is the rule the models were trained with (the bundled demo model and every artifact
  ``training/train.py`` writes), so a score measures the task the model learned;
- it is a point query: no tie rule is needed, and it is defined the same way for a session's
  segments and for a clip labelled as a whole;
- where a window holds one boundary the two rules give the same label (the centre lies in the
  longer part); they differ only for windows holding a segment shorter than the window, where
  "most of the window" picks whichever neighbour happens to be longer and the centre picks
  what was happening in the middle of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from evimae_stream.types import Segment


def window_centre(t_ref_s: float, window_s: float) -> float:
    """The time the centre rule reads: the middle of ``(t_ref_s − window_s, t_ref_s]``."""
    return t_ref_s - window_s / 2.0


def label_at(labels: Sequence[Segment], t_s: float) -> str | None:
    """The label whose segment ``[start, end)`` contains ``t_s``, or None."""
    for seg in labels:
        if seg.start_s <= t_s < seg.end_s:
            return seg.label
    return None


def window_truth(labels: Sequence[Segment], t_ref_s: float, window_s: float) -> str | None:
    """The ground truth of the window ending at ``t_ref_s`` (centre rule), or None where no
    label covers the centre (such windows are neither trained on nor scored)."""
    return label_at(labels, window_centre(t_ref_s, window_s))
