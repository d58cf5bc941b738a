"""What a run recognised, in words: a compact timeline of the actions and, for a labelled
session, how many windows the model got right.

The exit summary counts windows and latencies; a newcomer running the demo first wants to see
*what* was recognised. Consecutive windows with the same label are one line of the timeline,
from the first window's end less one stride to the last window's end (so the lines tile the
session, as the prediction lane of ``--eval``'s timeline does); a 75 s session of eight actions
reads as about a dozen lines, and the full per-window record is the JSON Lines output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: the timeline's lines at most; the rest is counted in one closing line
MAX_LINES = 16


@dataclass(frozen=True)
class ActionRun:
    """Consecutive windows with one label (None: no prediction), ``start_s``–``end_s`` in
    session seconds."""

    start_s: float
    end_s: float
    label: str | None
    windows: int


def action_runs(predictions, stride_s: float) -> list[ActionRun]:
    """The predictions merged into runs of one label, in time order."""
    runs: list[ActionRun] = []
    for p in predictions:
        t = p.t_ref_s if p.t_ref_s is not None else p.t_s
        if runs and runs[-1].label == p.label:
            last = runs[-1]
            runs[-1] = ActionRun(last.start_s, t, last.label, last.windows + 1)
        else:
            runs.append(ActionRun(max(0.0, t - stride_s), t, p.label, 1))
    return runs


def timeline_lines(predictions, stride_s: float, limit: int = MAX_LINES) -> list[str]:
    """``recognised:`` then one line per run of one action (``3.0– 9.5 s  stirring  (13
    windows)``), the longest runs kept when there are more than ``limit``."""
    runs = action_runs(predictions, stride_s)
    if not runs:
        return []
    shown = runs
    if len(runs) > limit:
        keep = sorted(sorted(runs, key=lambda r: -r.windows)[:limit], key=lambda r: r.start_s)
        shown = keep
    width = max(len(r.label or "(no prediction)") for r in shown)
    out = ["recognised (session seconds, consecutive windows with one label merged):"]
    for r in shown:
        name = r.label or "(no prediction)"
        plural = "window" if r.windows == 1 else "windows"
        out.append(f"  {r.start_s:6.1f}–{r.end_s:6.1f} s  {name:<{width}}  ({r.windows} {plural})")
    if len(shown) < len(runs):
        hidden = len(runs) - len(shown)
        out.append(f"  … and {hidden} shorter runs not shown (every window is in --jsonl)")
    return out


def accuracy_lines(predictions, truths: Sequence[str | None], classes: Sequence[str]) -> list[str]:
    """The window accuracy against ``truths`` (one per prediction, None: unlabelled), and which
    of the session's labels the model cannot predict at all."""
    labelled = [(p.label, t) for p, t in zip(predictions, truths, strict=True) if t is not None]
    pairs = [(label, t) for label, t in labelled if label is not None]
    if not pairs:
        return []
    right = sum(label == t for label, t in pairs)
    out = [
        f"accuracy {right / len(pairs):.3f}: {right} of {len(pairs)} labelled windows right "
        "(scored as --eval scores them)"
    ]
    seen = {t for _, t in labelled}
    unknown = sorted(seen - set(classes))
    if unknown:
        out.append(vocabulary_line(unknown, bool(seen & set(classes)), len(classes)))
    return out


def vocabulary_line(unknown: Sequence[str], overlap: bool, n_classes: int) -> str:
    """Which of the session's labels the model (``n_classes`` classes) does not know: it can
    never predict them; ``overlap``: whether any of the session's labels is one it knows."""
    head = (
        f"{len(unknown)} of the session's labels are not among the model's classes"
        if overlap
        else "the model's classes and the session's labels do not overlap"
    )
    return (
        f"warning: {head}: the model ({n_classes} classes) does not know {', '.join(unknown)}; "
        "windows with those labels cannot be right (use a model trained on these labels)"
    )
