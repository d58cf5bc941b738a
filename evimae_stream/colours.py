"""One colour per class, shared by the monitor's timeline and ``--eval``'s timeline PNG, so a
class has the same colour in both; no-action labels are grey, "no prediction" is the empty
lane's light grey.
"""

from __future__ import annotations

from collections.abc import Sequence

#: labels drawn in grey (no action)
NEUTRAL = frozenset({"idle", "null", "none", "background", "0"})
#: the colour of no-action labels
NEUTRAL_COLOUR = "#bdbdbd"
#: the colour of a lane where nothing was predicted
NO_PREDICTION_COLOUR = "#ebebeb"
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#dbdb8d", "#9edae5", "#393b79", "#637939",
)  # fmt: skip


def is_neutral(label: str) -> bool:
    """Whether ``label`` means "no action" (drawn grey)."""
    return label.strip().lower() in NEUTRAL


def class_colour(label: str, classes: Sequence[str]) -> str:
    """``#rrggbb`` of ``label``: grey for no-action labels, else the palette entry of its place
    among the action labels of ``classes`` (which must hold it; beyond the palette, evenly
    spaced hues)."""
    if is_neutral(label):
        return NEUTRAL_COLOUR
    actions = [c for c in dict.fromkeys(classes) if not is_neutral(c)]
    i = actions.index(label)
    if i < len(PALETTE):
        return PALETTE[i]
    return _hue(i, len(actions))


def _hue(i: int, n: int) -> str:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((i % n) / n, 0.65, 0.95)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def to_bgr(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` as an OpenCV BGR tuple."""
    r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
    return b, g, r
